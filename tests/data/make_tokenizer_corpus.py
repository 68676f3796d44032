#!/usr/bin/env python3
"""Regenerates tests/data/tokenizer_corpus.txt (committed; this script documents how it was made).
A mix of scripts and edge cases for the tiktoken oracle test; deterministic (fixed seed)."""
import random, sys

parts = []
add = parts.append
add("""The quick brown fox jumps over the lazy dog. It's a truth universally acknowledged, that a single man
in possession of a good fortune, must be in want of a wife. "Don't," she said; "you'll regret it." I'M SURE
THEY'RE RIGHT, WE'VE SEEN IT, HE'LL KNOW, SHE'D SAY, IT'S FINE. don'T wOn'T I'm you'Re they'VE we'Ll he'D
Contractions at odd places: 'S 'T 'Re 'VE 'M 'LL 'D 's't're've'm'll'd ''s 'sss 'ſ 'K (Kelvin sign) 'ﬅ.
Mr. O'Neill's rock'n'roll band ain't playin' 'til 9 o'clock — rock ’n’ roll with curly quotes ‘s ’t.
""")
add("""camelCase getUserName parseHTTPResponse XMLHttpRequest iPhone eBay McDonald MacOS SCREAMING_SNAKE_CASE
snake_case kebab-case PascalCase ABCDef ABCdef aBCd HTTPServer2Go x86_64 utf8ToUtf16 IOError __init__
""")
add('''#include <stdio.h>
int main(int argc, char **argv) {
\tfor (int i = 0; i < argc; i++) printf("%s\\n", argv[i]);   // print args
\treturn 0x7fffffff >> 3 | ~0u;
}
def fib(n: int) -> int:
    """Return the n-th Fibonacci number."""
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a

if __name__ == "__main__":
        print(fib(100))   # trailing spaces here:     
\t\t\tindented with tabs
{"key": [1, 2.5e-10, null, true], "nested": {"a": "b\\u00e9"}, "url": "https://example.com/a/b?c=d&e=f#g"}
<html><body class="x"><p>Hello&nbsp;world &amp; &lt;tag&gt;</p></body></html>
SELECT id, name FROM users WHERE age >= 18 AND name LIKE '%smith%' ORDER BY id DESC LIMIT 10;
$ ls -la /usr/local/bin | grep -E '^-rwx' && echo "done" || exit 1
a+=1;b-=2;c*=3;d/=4;e%=5;f**=6;g//=7;h<<=8;i>>=9;j&=10;k|=11;l^=12;m!=n;o==p;q===r;s!==t;u=>v;w->x;y::z
''')
add("""中文测试：人工智能（AI）正在改变世界。我们使用大语言模型来处理自然语言，例如“你好，世界！”以及《红楼梦》。
数字１２３和123混合，标点、。！？；：「」『』【】〔〕…—·。这是一个很长的句子没有任何标点符号用来测试汉字连续匹配的情况
日本語のテキスト：今日は良い天気ですね。カタカナ「コンピューター」とひらがな「こんにちは」、漢字々〆〇ヶ。ｶﾀｶﾅ半角ｶﾅﾃﾞｽ。
한국어 텍스트: 안녕하세요, 세계! 대한민국의 수도는 서울입니다. 한글 자모 ㄱㄴㄷ ㅏㅑㅓ 조합형 각.
Русский текст: Съешь же ещё этих мягких французских булок, да выпей чаю. ПРИВЕТ Мир! ЁЖИК ёжик.
Ελληνικά: Ξεσκεπάζω την ψυχοφθόρα βδελυγμία. ΑΒΓΔ αβγδ ς.
العربية: نص تجريبي باللغة العربية، مع أرقام ١٢٣٤٥٦ وعلامات تشكيل: مُحَمَّدٌ. עברית: שלום עולם! סוֹף.
हिन्दी: यह एक परीक्षण वाक्य है। ไทย: ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ. Tiếng Việt: Xin chào thế giới, Đặng Thị Ngọc.
ქართული ენა. Հայերեն. አማርኛ ቋንቋ. ᏣᎳᎩ. ᠮᠣᠩᠭᠣᠯ. ᚠᚢᚦᚨᚱᚲ. Türkçe İıŞşĞğ. Polski: Zażółć gęślą jaźń. Ærøskøbing ÅÄÖ ß ẞ.
""")
add("""Emoji: 😀😃😄 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇺🇸🇯🇵🇨🇳 ❤️ ✔︎ 1️⃣ #️⃣ 🧑🏿‍🚀 👩🏻‍❤️‍💋‍👨🏼 🫠 🤷‍♀️ 🐈‍⬛ 🏴󠁧󠁢󠁳󠁣󠁴󠁿
Combining: e\u0301 a\u0300\u0301\u0302 n\u0303 Z\u0324\u0354\u0367\u0311\u0353a\u0336l\u036eg\u0317o\u0319 \u0301leading-mark x\u20dd q\u0307\u0323
Math: 𝐀𝐁𝐂 𝑎𝑏𝑐 𝔸𝔹ℂ ∀x∈ℝ: x²≥0, ∑ᵢ aᵢ = ∫₀^∞ f(x)dx ≈ 3.14159… ½ ⅓ ¾ Ⅻ ⅻ ① ⑳ ⁰¹²³ ₀₁₂ ∞ ≠ ≤ ≥
Titlecase ǅǈǋ ǲ; modifier ʰʲʷ ˈˌ ꜀; ligatures ﬁ ﬂ ﬀ; fullwidth ＡＢＣａｂｃ０１２３; small caps ᴀʙᴄ.
""")
add("Digits: 0 12 345 6789 0123456789012345678901234567890 3.14159265358979 1,000,000 1_000_000 -42 +7 1e10 0xDEADBEEF "
    "٠١٢٣٤٥٦٧٨٩ ۰۱۲۳ ०१२३४५ ๑๒๓ 〇一二三 ߁߂ 12abc abc12 a1b2c3 2024-01-01T12:34:56Z v1.2.3 192.168.0.1\n")
add("Whitespace:  two  spaces   three    four\ttab\t\ttabs \t mixed\u00a0nbsp\u3000ideographic\u2002en\u2003em\u2009thin\u202fnnbsp\u205fmmsp\n")
add("CRLF line\r\nanother\r\n\r\nblank above\r\r\nlone CR\rand LF\n\n\n\nmany newlines\n   \n  \t \n trailing   \n")
add("Line sep\u2028para sep\u2029NEL\u0085vt\x0bff\x0cFS\x1cGS\x1dRS\x1eUS\x1f end\n")
add("Invisible: zero\u200bwidth\u200cnon\u200djoiner\ufeffbom soft\u00adhyphen mongolian\u180evs word\u2060joiner lrm\u200erlm\u200f bidi\u202aembed\u202c\n")
add("Controls: \x01\x02\x03\x07\x08\x7f \x1b[31mred\x1b[0m and a NUL byte:\x00 end\n")
add("Private use: \ue000\ue001\uf8ff plane15: \U000f0000 CJK ext B: 𠀀𠀁𪚥 ext A: 㐀㐁 compat: 丽丸 radicals: ⺀⺁⼀ strokes: ㇀ tone marks: 〪〫 Han marks: \U00016ff0\U00016ff1 iteration: 々〻\n")
add("Specials in text: <|im_system|>system<|im_middle|>You are Kimi.<|im_end|><|im_user|>user<|im_middle|>hi<|im_end|>"
    "<|im_assistant|>assistant<|im_middle|>[BOS][EOS][UNK][PAD]<|tool_calls_section_begin|><|tool_call_begin|>functions.get:0"
    "<|tool_call_argument_begin|>{\"a\":1}<|tool_call_end|><|tool_calls_section_end|> partial <|im_end| <|im_en [BOS "
    "<|reserved_token_200003|> nested <<|im_end|>> text<|im_end|>text [EOT][EOT]\n")
add("Punctuation runs: !!! ??? ... ,,, ;;; ::: --- ___ +++ === *** ### @@@ $$$ %%% ^^^ &&& ||| ~~~ ``` ''' \"\"\" /// \\\\\\ ((( ))) [[[ ]]] {{{ }}} <<< >>>\n"
    " !?\n ...\r\n --\n\n !!!\r\n\r\n")

# Random mix of tricky characters, to catch differences a hand-written list would miss.
rng = random.Random(1234)
pool = list("aAzZ09 \t\n\r'’sStTdDmMlLrRvVeE.,;:!?-_()[]{}<>/\\\"#@$%^&*+=|~`") + [
    "\u00a0", "\u3000", "\u2028", "\u0085", "\u200b", "\u00ad", "\u0301", "\u0308", "\u20dd", "中", "文", "、", "。",
    "ー", "々", "〇", "ア", "あ", "한", "ㄱ", "Я", "я", "ß", "ẞ", "ǅ", "ʰ", "ſ", "\u212a", "İ", "ı", "١", "٣", "²", "½",
    "Ⅻ", "①", "😀", "👍", "\U0001f3fd", "\u200d", "\ufe0f", "🇺", "𝐀", "𝑎", "𠀀", "\ue000", "ـ", "ا", "ب", "\u0651",
    "क", "\u094d", "ก", "\u0e31", "\x1c", "\x0b", "\x0c", "ﬁ", "Ａ", "ａ", "１", "\U00016ff0", "〪",
]
for line in range(600):
    add("".join(rng.choice(pool) for _ in range(rng.randint(5, 80))) + "\n")

# Runs of more than 25,000 characters (the reference cuts them) are made by tests/test_tokenizer_oracle.sh
# rather than committed.
add("end of corpus")
sys.stdout.write("".join(parts))
