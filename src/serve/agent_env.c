/* Deterministic tool environments for the agent: calendar arithmetic, unit conversion and a simulated
 * travel-booking API over a seeded catalogue (K2's "couple's trip to Da Nang" example).
 *
 * Everything here is a pure function of (seed, arguments, bookings made so far): the same task replayed
 * against a fresh environment gives the same answers, which is what makes a reference trajectory
 * reproducible and a verifier's expected final state checkable. The flight catalogue is not stored: the
 * flights of (from, to, date) are generated from a hash of the seed and that key whenever asked for, so
 * two years of schedules cost no memory; only bookings are state. Hotels are a small fixed list built once.
 *
 * Every bad argument is a message for the model (NULL + k2c_seterr), never a crash: the agent turns it
 * into a tool result the model can react to. */
#include "serve/serve.h"

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ dates */
/* Days since 1970-01-01 of a proleptic Gregorian date (the era-based civil-days formula). */
static long days_from_civil(int y, int m, int d) {
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    long yoe = y - era * 400;
    long doy = (153L * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(long z, int *y, int *m, int *d) {
    z += 719468;
    long era = (z >= 0 ? z : z - 146096) / 146097;
    long doe = z - era * 146097;
    long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static int leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int k2c_date_parse(const char *s, long *days) {
    int y, m, d, n = 0;
    if (!s || strlen(s) != 10 || sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || n != 10 || s[4] != '-' || s[7] != '-') {
        k2c_seterr("'%s' is not an ISO date (YYYY-MM-DD)", s ? s : "");
        return -1;
    }
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && !isdigit((unsigned char)s[i])) { k2c_seterr("'%s' is not an ISO date (YYYY-MM-DD)", s); return -1; }
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1] + (m == 2 && leap(y))) {
        k2c_seterr("'%s' is not a calendar date", s);
        return -1;
    }
    *days = days_from_civil(y, m, d);
    return 0;
}

void k2c_date_format(long days, char out[11]) {
    int y, m, d;
    civil_from_days(days, &y, &m, &d);
    unsigned v[3] = {(unsigned)(y % 10000 + 10000) % 10000, (unsigned)m % 100, (unsigned)d % 100};
    /* digits written out: the ranges are known, snprintf's truncation warning is not */
    out[0] = (char)('0' + v[0] / 1000); out[1] = (char)('0' + v[0] / 100 % 10); out[2] = (char)('0' + v[0] / 10 % 10);
    out[3] = (char)('0' + v[0] % 10); out[4] = '-'; out[5] = (char)('0' + v[1] / 10); out[6] = (char)('0' + v[1] % 10);
    out[7] = '-'; out[8] = (char)('0' + v[2] / 10); out[9] = (char)('0' + v[2] % 10); out[10] = 0;
}

const char *k2c_weekday_name(long days) {
    static const char *names[7] = {"Thursday", "Friday", "Saturday", "Sunday", "Monday", "Tuesday", "Wednesday"};
    long w = days % 7;
    return names[w < 0 ? w + 7 : w];     /* 1970-01-01 was a Thursday */
}

/* ------------------------------------------------------------------ units */
typedef struct { const char *name; const char *aliases; char dim; double factor; } unit_def;

/* factor: base units per unit (m, kg, l, s); temperature is converted through kelvin separately.
 * aliases: space-separated, matched case-insensitively (except the name, which is canonical output). */
static const unit_def UNITS[] = {
    {"m", "m meter meters metre metres", 'L', 1},
    {"km", "km kilometer kilometers kilometre kilometres", 'L', 1000},
    {"cm", "cm centimeter centimeters centimetre centimetres", 'L', 0.01},
    {"mm", "mm millimeter millimeters millimetre millimetres", 'L', 0.001},
    {"mi", "mi mile miles", 'L', 1609.344},
    {"ft", "ft foot feet", 'L', 0.3048},
    {"in", "in inch inches", 'L', 0.0254},
    {"yd", "yd yard yards", 'L', 0.9144},
    {"kg", "kg kilogram kilograms kilo kilos", 'M', 1},
    {"g", "g gram grams", 'M', 0.001},
    {"lb", "lb lbs pound pounds", 'M', 0.45359237},
    {"oz", "oz ounce ounces", 'M', 0.028349523125},
    {"C", "c celsius degc °c", 'T', 0},
    {"F", "f fahrenheit degf °f", 'T', 0},
    {"K", "k kelvin kelvins", 'T', 0},
    {"l", "l liter liters litre litres", 'V', 1},
    {"ml", "ml milliliter milliliters millilitre millilitres", 'V', 0.001},
    {"gal", "gal gallon gallons", 'V', 3.785411784},
    {"s", "s sec secs second seconds", 'S', 1},
    {"min", "min mins minute minutes", 'S', 60},
    {"h", "h hr hrs hour hours", 'S', 3600},
    {"day", "day days d", 'S', 86400},
};
#define NUNITS (int)(sizeof UNITS / sizeof UNITS[0])

static int find_unit(const char *s) {
    char low[32];
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof low) return -1;
    for (size_t i = 0; i <= n; i++) low[i] = (char)tolower((unsigned char)s[i]);
    for (int u = 0; u < NUNITS; u++) {
        const char *a = UNITS[u].aliases;
        while (*a) {
            size_t l = strcspn(a, " ");
            if (l == n && !strncmp(a, low, n)) return u;
            a += l;
            while (*a == ' ') a++;
        }
    }
    return -1;
}

static const char *dim_name(char d) {
    return d == 'L' ? "length" : d == 'M' ? "mass" : d == 'T' ? "temperature" : d == 'V' ? "volume" : "time";
}

static double to_kelvin(const char *u, double v) { return *u == 'C' ? v + 273.15 : *u == 'F' ? (v - 32) * 5 / 9 + 273.15 : v; }
static double from_kelvin(const char *u, double k) { return *u == 'C' ? k - 273.15 : *u == 'F' ? (k - 273.15) * 9 / 5 + 32 : k; }

int k2c_convert_units(double value, const char *from, const char *to, double *out, const char **unit) {
    int a = find_unit(from), b = find_unit(to);
    if (a < 0 || b < 0) {
        k2c_seterr("unknown unit '%s' (units: m km cm mm mi ft in yd, kg g lb oz, C F K, l ml gal, s min h day)", a < 0 ? from : to);
        return -1;
    }
    if (UNITS[a].dim != UNITS[b].dim) {
        k2c_seterr("cannot convert %s (%s) to %s (%s)", UNITS[a].name, dim_name(UNITS[a].dim), UNITS[b].name, dim_name(UNITS[b].dim));
        return -1;
    }
    double k = UNITS[a].dim == 'T' ? from_kelvin(UNITS[b].name, to_kelvin(UNITS[a].name, value))
                                   : value * UNITS[a].factor / UNITS[b].factor;
    if (UNITS[a].dim == 'T' && to_kelvin(UNITS[a].name, value) < 0) { k2c_seterr("%g %s is below absolute zero", value, UNITS[a].name); return -1; }
    if (!isfinite(k)) { k2c_seterr("the result is not a finite number"); return -1; }
    /* 10 significant digits: enough for any answer, and 0.1 + 0.2 style noise never reaches the model */
    char buf[64];
    snprintf(buf, sizeof buf, "%.10g", k);
    *out = strtod(buf, NULL);
    *unit = UNITS[b].name;
    return 0;
}

/* ------------------------------------------------------------------ the travel environment */
#define FIRST_DAY 20454L    /* 2026-01-01 */
#define LAST_DAY 21183L     /* 2027-12-31 */
#define MAX_BOOKINGS 256

static const struct { const char *code, *city, *aliases; int coastal; } AIRPORTS[] = {
    {"HAN", "Hanoi", "hanoi|ha noi|han", 0},
    {"SGN", "Ho Chi Minh City", "ho chi minh city|ho chi minh|hcmc|saigon|sai gon|sgn", 0},
    {"DAD", "Da Nang", "da nang|danang|dad", 1},
    {"CXR", "Nha Trang", "nha trang|nhatrang|cam ranh|cxr", 1},
    {"PQC", "Phu Quoc", "phu quoc|phuquoc|pqc", 1},
};
#define NAIRPORTS 5

/* one-way economy base fares (VND) by route, symmetric: distance-like */
static const int BASE_FARE[NAIRPORTS][NAIRPORTS] = {
    {0, 1900000, 1300000, 1700000, 2100000},
    {1900000, 0, 1200000, 900000, 800000},
    {1300000, 1200000, 0, 1000000, 1400000},
    {1700000, 900000, 1000000, 0, 1100000},
    {2100000, 800000, 1400000, 1100000, 0},
};

typedef struct {
    char id[16], name[48];
    int city, stars, sea_view, rooms;
    long price;                 /* VND per night */
} hotel;

typedef struct { char booking_id[16], kind[8], item[32]; int count; long total; } booking;

struct k2c_travel {
    uint64_t seed;
    hotel hotels[64];
    int nhotels;
    booking book[MAX_BOOKINGS];
    int nbook;
};

static uint64_t mix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int find_airport(const char *s) {
    for (int i = 0; i < NAIRPORTS; i++) if (!strcasecmp(s, AIRPORTS[i].code)) return i;
    return -1;
}

/* A city by name, alias or airport code, ignoring case and extra spaces. */
static int find_city(const char *s) {
    char low[64];
    size_t n = 0;
    for (const char *p = s; *p && n + 1 < sizeof low; p++) {
        char c = (char)tolower((unsigned char)*p);
        if (c == ' ' && (n == 0 || low[n - 1] == ' ')) continue;
        low[n++] = c;
    }
    while (n && low[n - 1] == ' ') n--;
    low[n] = 0;
    for (int i = 0; i < NAIRPORTS; i++)
        for (const char *a = AIRPORTS[i].aliases; *a;) {      /* '|'-separated, each compared whole */
            size_t l = strcspn(a, "|");
            if (l == n && !strncmp(a, low, n)) return i;
            a += l + (a[l] == '|');
        }
    return -1;
}

k2c_travel *k2c_travel_new(uint64_t seed) {
    k2c_travel *t = calloc(1, sizeof *t);
    if (!t) { k2c_seterr("out of memory"); return NULL; }
    t->seed = seed;
    static const char *first[] = {"Lotus", "Golden", "Pearl", "Lantern", "Jade", "Coral", "Orchid", "Silk", "Bamboo", "Sunrise",
                                  "Mango", "Lagoon", "Harbor", "Palm", "Azure", "Emerald"};
    static const char *second[] = {"Bay Hotel", "Resort", "Boutique Hotel", "Suites", "Inn", "Grand Hotel", "Residence", "Palace"};
    /* per city: stars of each hotel, in order; Da Nang's 4-star hotels all have a sea view (the example
     * task needs at least two to choose between, one of them over the budget) */
    static const int layout[NAIRPORTS][8] = {
        {2, 3, 3, 4, 4, 5, 0, 0}, {2, 3, 4, 4, 5, 5, 0, 0}, {2, 3, 3, 4, 4, 4, 5, 0}, {2, 3, 4, 4, 5, 0, 0, 0}, {3, 3, 4, 5, 5, 0, 0, 0},
    };
    static const long lo[6] = {0, 0, 350000, 700000, 1400000, 3000000}, span[6] = {0, 0, 350000, 700000, 1400000, 3500000};
    for (int c = 0; c < NAIRPORTS; c++)
        for (int k = 0; k < 8 && layout[c][k]; k++) {
            hotel *h = &t->hotels[t->nhotels++];
            uint64_t r = mix64(seed ^ ((uint64_t)(c * 8 + k + 1) << 32));
            h->city = c;
            h->stars = layout[c][k];
            snprintf(h->id, sizeof h->id, "H-%s-%d", AIRPORTS[c].code, k + 1);
            snprintf(h->name, sizeof h->name, "%s %s", first[(r >> 8) % 16], second[(r >> 16) % 8]);
            h->price = (lo[h->stars] + (long)((r >> 24) % (uint64_t)(span[h->stars] / 50000 + 1)) * 50000);
            h->rooms = 1 + (int)((r >> 40) % 4);
            h->sea_view = AIRPORTS[c].coastal && (h->stars == 4 ? 1 : (r >> 48) % 2);
            if (c == 2 && h->stars == 4) h->sea_view = 1;
        }
    return t;
}

void k2c_travel_free(k2c_travel *t) { free(t); }

/* Flights of one route and day: 3 to 5, sorted by departure. */
typedef struct { char id[32]; int dep_min; long price; int seats; } flight;

static int day_flights(const k2c_travel *t, int a, int b, long day, flight *f) {
    uint64_t key = mix64(t->seed ^ mix64(((uint64_t)a * 16 + (uint64_t)b) << 40 ^ (uint64_t)day));
    int n = 3 + (int)(key % 3);
    char date[11];
    k2c_date_format(day, date);
    for (int j = 0; j < n; j++) {
        uint64_t r = mix64(key + (uint64_t)j + 1);
        /* departures spread through the day: slot j of n, jittered in 5-minute steps */
        f[j].dep_min = 360 + j * (960 / n) / 5 * 5 + (int)(r % (uint64_t)(960 / n / 5)) * 5;
        double u = (double)((r >> 16) % 1000) / 1000.0;
        f[j].price = (long)(BASE_FARE[a][b] * (0.6 + 0.9 * u) / 1000) * 1000;
        f[j].seats = 1 + (int)((r >> 32) % 9);
        snprintf(f[j].id, sizeof f[j].id, "%s-%s-%.4s%.2s%.2s-%d", AIRPORTS[a].code, AIRPORTS[b].code, date, date + 5, date + 8, j + 1);
    }
    return n;
}

static int booked(const k2c_travel *t, const char *kind, const char *item) {
    int n = 0;
    for (int i = 0; i < t->nbook; i++)
        if (!strcmp(t->book[i].kind, kind) && !strcmp(t->book[i].item, item)) n += t->book[i].count;
    return n;
}

static char *dump(json_t *j) {
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (!s) k2c_seterr("out of memory");
    return s;
}

static int get_int(json_t *a, const char *key, long lo, long hi, long *out, int required) {
    json_t *v = json_object_get(a, key);
    if (!v) {
        if (required) { k2c_seterr("missing '%s'", key); return -1; }
        return 1;
    }
    double d = json_is_integer(v) ? (double)json_integer_value(v) : json_is_real(v) ? json_real_value(v) : NAN;
    if (json_is_string(v)) d = strtod(json_string_value(v), NULL);   /* "2" from a loose caller */
    if (!isfinite(d) || d != floor(d) || d < lo || d > hi) { k2c_seterr("'%s' must be an integer in %ld..%ld", key, lo, hi); return -1; }
    *out = (long)d;
    return 0;
}

static int get_num(json_t *a, const char *key, double *out) {
    json_t *v = json_object_get(a, key);
    if (!v || json_is_null(v)) return 1;
    if (!json_is_number(v)) { k2c_seterr("'%s' must be a number", key); return -1; }
    *out = json_number_value(v);
    return 0;
}

static char *search_flights(const k2c_travel *t, json_t *a) {
    const char *from = json_string_value(json_object_get(a, "from")), *to = json_string_value(json_object_get(a, "to"));
    const char *date = json_string_value(json_object_get(a, "date"));
    if (!from || !to || !date) { k2c_seterr("search_flights needs 'from', 'to' (IATA codes) and 'date' (YYYY-MM-DD)"); return NULL; }
    int fa = find_airport(from), fb = find_airport(to);
    if (fa < 0 || fb < 0) { k2c_seterr("unknown airport '%s' (airports: HAN SGN DAD CXR PQC)", fa < 0 ? from : to); return NULL; }
    if (fa == fb) { k2c_seterr("'from' and 'to' are the same airport"); return NULL; }
    long day;
    if (k2c_date_parse(date, &day)) return NULL;
    if (day < FIRST_DAY || day > LAST_DAY) { k2c_seterr("no flights are scheduled on %s (the schedule covers 2026-01-01 to 2027-12-31)", date); return NULL; }
    double maxp = INFINITY;
    if (get_num(a, "max_price", &maxp) < 0) return NULL;
    flight f[8];
    int n = day_flights(t, fa, fb, day, f);
    json_t *arr = json_array();
    char canon[11];
    k2c_date_format(day, canon);
    for (int j = 0; j < n; j++) {
        int left = f[j].seats - booked(t, "flight", f[j].id);
        if (left <= 0 || f[j].price > maxp) continue;
        char dep[16];
        snprintf(dep, sizeof dep, "%02d:%02d", f[j].dep_min / 60, f[j].dep_min % 60);
        json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:i}", "id", f[j].id, "from", AIRPORTS[fa].code, "to",
                                             AIRPORTS[fb].code, "date", canon, "depart", dep, "price", (json_int_t)f[j].price,
                                             "seats_left", left));
    }
    return dump(json_pack("{s:o}", "flights", arr));
}

/* A flight id back to its route, day and index; the flight is regenerated from those. */
static int parse_flight(const k2c_travel *t, const char *id, flight *out, int *fa, int *fb, long *day) {
    char a[4], b[4], ymd[9];
    int j, n = 0;
    if (!id || strlen(id) > 24 || sscanf(id, "%3[A-Z]-%3[A-Z]-%8[0-9]-%d%n", a, b, ymd, &j, &n) != 4 || id[n]) return -1;
    char date[11];
    snprintf(date, sizeof date, "%.4s-%.2s-%.2s", ymd, ymd + 4, ymd + 6);
    *fa = find_airport(a); *fb = find_airport(b);
    if (*fa < 0 || *fb < 0 || *fa == *fb || k2c_date_parse(date, day) || *day < FIRST_DAY || *day > LAST_DAY) return -1;
    flight f[8];
    int nf = day_flights(t, *fa, *fb, *day, f);
    if (j < 1 || j > nf) return -1;
    *out = f[j - 1];
    return 0;
}

static char *add_booking(k2c_travel *t, const char *kind, const char *item, int count, long total, json_t *extra) {
    if (t->nbook == MAX_BOOKINGS) { json_decref(extra); k2c_seterr("the booking system is full (%d bookings)", MAX_BOOKINGS); return NULL; }
    booking *b = &t->book[t->nbook++];
    snprintf(b->booking_id, sizeof b->booking_id, "B%d", t->nbook);
    snprintf(b->kind, sizeof b->kind, "%s", kind);
    snprintf(b->item, sizeof b->item, "%s", item);
    b->count = count;
    b->total = total;
    json_object_set_new(extra, "booking_id", json_string(b->booking_id));
    json_object_set_new(extra, "status", json_string("confirmed"));
    json_object_set_new(extra, "total_price", json_integer(total));
    return dump(extra);
}

static char *book_flight(k2c_travel *t, json_t *a) {
    const char *id = json_string_value(json_object_get(a, "flight_id"));
    long pax;
    if (!id) { k2c_seterr("missing 'flight_id'"); return NULL; }
    if (get_int(a, "passengers", 1, 9, &pax, 1)) return NULL;
    flight f;
    int fa, fb;
    long day;
    if (parse_flight(t, id, &f, &fa, &fb, &day)) { k2c_seterr("no flight '%s' (use an id from search_flights)", id); return NULL; }
    int left = f.seats - booked(t, "flight", f.id);
    if (left < pax) { k2c_seterr("flight %s has %d seat%s left, %ld requested", id, left, left == 1 ? "" : "s", pax); return NULL; }
    return add_booking(t, "flight", f.id, (int)pax, f.price * pax,
                       json_pack("{s:s,s:i}", "flight_id", f.id, "passengers", (int)pax));
}

static char *search_hotels(const k2c_travel *t, json_t *a) {
    const char *city = json_string_value(json_object_get(a, "city"));
    if (!city) { k2c_seterr("missing 'city'"); return NULL; }
    int c = find_city(city);
    if (c < 0) { k2c_seterr("unknown city '%s' (cities: Da Nang, Hanoi, Ho Chi Minh City, Nha Trang, Phu Quoc)", city); return NULL; }
    long stars = 0;
    double maxp = INFINITY;
    if (get_int(a, "stars", 1, 5, &stars, 0) < 0 || get_num(a, "max_price", &maxp) < 0) return NULL;
    json_t *sv = json_object_get(a, "sea_view");
    if (sv && !json_is_boolean(sv) && !json_is_null(sv)) { k2c_seterr("'sea_view' must be true or false"); return NULL; }
    json_t *arr = json_array();
    for (int i = 0; i < t->nhotels; i++) {
        const hotel *h = &t->hotels[i];
        if (h->city != c || (stars && h->stars != stars) || (json_is_boolean(sv) && h->sea_view != json_is_true(sv)) || h->price > maxp) continue;
        if (h->rooms - booked(t, "hotel", h->id) <= 0) continue;
        json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:i,s:b,s:I}", "id", h->id, "name", h->name, "city", AIRPORTS[c].city,
                                             "stars", h->stars, "sea_view", h->sea_view, "price_per_night", (json_int_t)h->price));
    }
    return dump(json_pack("{s:o}", "hotels", arr));
}

static char *book_hotel(k2c_travel *t, json_t *a) {
    const char *id = json_string_value(json_object_get(a, "hotel_id"));
    long nights;
    if (!id) { k2c_seterr("missing 'hotel_id'"); return NULL; }
    if (get_int(a, "nights", 1, 30, &nights, 1)) return NULL;
    for (int i = 0; i < t->nhotels; i++) {
        const hotel *h = &t->hotels[i];
        if (strcmp(h->id, id)) continue;
        if (h->rooms - booked(t, "hotel", h->id) <= 0) { k2c_seterr("%s (%s) has no room left", h->id, h->name); return NULL; }
        return add_booking(t, "hotel", h->id, (int)nights, h->price * nights,
                           json_pack("{s:s,s:s,s:i}", "hotel_id", h->id, "name", h->name, "nights", (int)nights));
    }
    k2c_seterr("no hotel '%s' (use an id from search_hotels)", id);
    return NULL;
}

char *k2c_travel_call(k2c_travel *t, const char *name, const char *args_json) {
    json_t *a = json_loads(args_json, 0, NULL);
    char *out = NULL;
    if (!json_is_object(a)) k2c_seterr("arguments must be a JSON object");
    else if (!strcmp(name, "search_flights")) out = search_flights(t, a);
    else if (!strcmp(name, "book_flight")) out = book_flight(t, a);
    else if (!strcmp(name, "search_hotels")) out = search_hotels(t, a);
    else if (!strcmp(name, "book_hotel")) out = book_hotel(t, a);
    else k2c_seterr("unknown tool '%s'", name);
    json_decref(a);
    return out;
}

char *k2c_travel_state_json(const k2c_travel *t) {
    json_t *arr = json_array();
    long spent = 0;
    for (int i = 0; i < t->nbook; i++) {
        const booking *b = &t->book[i];
        spent += b->total;
        json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:i,s:I}", "booking_id", b->booking_id, "type", b->kind, "id", b->item,
                                             !strcmp(b->kind, "flight") ? "passengers" : "nights", b->count, "total_price",
                                             (json_int_t)b->total));
    }
    return dump(json_pack("{s:o,s:I}", "bookings", arr, "spent", (json_int_t)spent));
}

/* ------------------------------------------------------------------ date and unit tools */
static char *date_tool(const char *name, json_t *a) {
    char buf[128];
    long d0, d1;
    if (!strcmp(name, "days_between")) {
        if (k2c_date_parse(json_string_value(json_object_get(a, "start")), &d0) ||
            k2c_date_parse(json_string_value(json_object_get(a, "end")), &d1)) return NULL;
        snprintf(buf, sizeof buf, "{\"days\":%ld}", d1 - d0);
    } else if (!strcmp(name, "weekday")) {
        if (k2c_date_parse(json_string_value(json_object_get(a, "date")), &d0)) return NULL;
        snprintf(buf, sizeof buf, "{\"weekday\":\"%s\"}", k2c_weekday_name(d0));
    } else {
        long n;
        if (k2c_date_parse(json_string_value(json_object_get(a, "date")), &d0) || get_int(a, "days", -3650000, 3650000, &n, 1)) return NULL;
        char out[11];
        int y, m, d;
        civil_from_days(d0 + n, &y, &m, &d);
        if (y < 1 || y > 9999) { k2c_seterr("the result is outside years 1..9999"); return NULL; }
        k2c_date_format(d0 + n, out);
        snprintf(buf, sizeof buf, "{\"date\":\"%s\"}", out);
    }
    return strdup(buf);
}

static char *units_tool(json_t *a) {
    json_t *v = json_object_get(a, "value");
    const char *from = json_string_value(json_object_get(a, "from")), *to = json_string_value(json_object_get(a, "to"));
    if (!json_is_number(v) || !from || !to) { k2c_seterr("convert_units needs 'value' (a number), 'from' and 'to' (unit names)"); return NULL; }
    double r;
    const char *unit;
    if (k2c_convert_units(json_number_value(v), from, to, &r, &unit)) return NULL;
    char buf[128];
    snprintf(buf, sizeof buf, "{\"result\":%.10g,\"unit\":\"%s\"}", r, unit);
    return strdup(buf);
}

char *k2c_env_tool(const char *name, const char *args_json) {
    json_t *a = json_loads(args_json, 0, NULL);
    char *out = NULL;
    if (!json_is_object(a)) k2c_seterr("arguments must be a JSON object");
    else if (!strcmp(name, "convert_units")) out = units_tool(a);
    else if (!strcmp(name, "days_between") || !strcmp(name, "weekday") || !strcmp(name, "add_days")) out = date_tool(name, a);
    else k2c_seterr("unknown tool '%s'", name);
    json_decref(a);
    return out;
}
