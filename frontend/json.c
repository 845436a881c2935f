/* json.c: a strict JSON (RFC 8259) reader into an arena.
 *
 * Used for safetensors headers and test case descriptions. It never reads
 * outside text[0..len), rejects trailing garbage, duplicate keys and nesting
 * deeper than JSON_MAX_DEPTH, and reports the byte offset of the first
 * problem. */
#include <stdlib.h>
#include <string.h>

#include "frontend.h"

enum { JSON_MAX_DEPTH = 64 };

typedef struct json_parser {
    sup_arena *arena;
    const char *text;
    size_t len, pos;
    char *err;
    size_t err_size;
    size_t err_offset;
    bool failed;
} json_parser;

static fe_json *json_fail(json_parser *p, const char *msg)
{
    if (!p->failed) {
        p->failed = true;
        p->err_offset = p->pos;
        if (p->err && p->err_size) snprintf(p->err, p->err_size, "%s", msg);
    }
    return NULL;
}

static void skip_ws(json_parser *p)
{
    while (p->pos < p->len) {
        char c = p->text[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static bool match_word(json_parser *p, const char *w)
{
    size_t n = strlen(w);
    if (p->len - p->pos < n || memcmp(p->text + p->pos, w, n) != 0) return false;
    p->pos += n;
    return true;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool read_hex4(json_parser *p, unsigned *out)
{
    if (p->len - p->pos < 4) return false;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hex_value(p->text[p->pos + i]);
        if (h < 0) return false;
        v = v << 4 | (unsigned)h;
    }
    p->pos += 4;
    *out = v;
    return true;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) return o[0] = (char)cp, 1;
    if (cp < 0x800) return o[0] = (char)(0xc0 | cp >> 6), o[1] = (char)(0x80 | (cp & 0x3f)), 2;
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Reads a string starting at the opening quote; decoded copy in the arena. */
static const char *parse_string(json_parser *p, size_t *out_len)
{
    p->pos++; /* opening quote */
    size_t start = p->pos, end = start;
    while (end < p->len && p->text[end] != '"') end += p->text[end] == '\\' ? 2 : 1;
    if (end >= p->len) {
        json_fail(p, "unterminated string");
        return NULL;
    }
    /* decoded text is never longer than the source */
    char *o = sup_arena_alloc(p->arena, end - start + 1);
    size_t n = 0;
    while (p->pos < end) {
        unsigned char c = (unsigned char)p->text[p->pos];
        if (c < 0x20) {
            json_fail(p, "control character in string");
            return NULL;
        }
        if (c != '\\') {
            o[n++] = (char)c;
            p->pos++;
            continue;
        }
        p->pos++;
        char e = p->text[p->pos++];
        switch (e) {
        case '"': o[n++] = '"'; break;
        case '\\': o[n++] = '\\'; break;
        case '/': o[n++] = '/'; break;
        case 'b': o[n++] = '\b'; break;
        case 'f': o[n++] = '\f'; break;
        case 'n': o[n++] = '\n'; break;
        case 'r': o[n++] = '\r'; break;
        case 't': o[n++] = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (!read_hex4(p, &cp)) {
                json_fail(p, "bad \\u escape");
                return NULL;
            }
            if (cp >= 0xd800 && cp < 0xdc00) {
                if (!match_word(p, "\\u") || !read_hex4(p, &lo) || lo < 0xdc00 || lo >= 0xe000) {
                    json_fail(p, "unpaired surrogate in \\u escape");
                    return NULL;
                }
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else if (cp >= 0xdc00 && cp < 0xe000) {
                json_fail(p, "unpaired surrogate in \\u escape");
                return NULL;
            }
            n += put_utf8(o + n, cp);
            break;
        }
        default:
            p->pos--;
            json_fail(p, "bad escape in string");
            return NULL;
        }
    }
    if (p->pos != end) {
        json_fail(p, "bad escape in string");
        return NULL;
    }
    p->pos = end + 1;
    o[n] = 0;
    *out_len = n;
    return o;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static fe_json *parse_number(json_parser *p, fe_json *v)
{
    size_t start = p->pos;
    bool integer = true;
    if (p->text[p->pos] == '-') p->pos++;
    if (p->pos >= p->len || !is_digit(p->text[p->pos])) return json_fail(p, "bad number");
    if (p->text[p->pos] == '0')
        p->pos++;
    else
        while (p->pos < p->len && is_digit(p->text[p->pos])) p->pos++;
    if (p->pos < p->len && p->text[p->pos] == '.') {
        integer = false;
        p->pos++;
        if (p->pos >= p->len || !is_digit(p->text[p->pos])) return json_fail(p, "bad number");
        while (p->pos < p->len && is_digit(p->text[p->pos])) p->pos++;
    }
    if (p->pos < p->len && (p->text[p->pos] == 'e' || p->text[p->pos] == 'E')) {
        integer = false;
        p->pos++;
        if (p->pos < p->len && (p->text[p->pos] == '+' || p->text[p->pos] == '-')) p->pos++;
        if (p->pos >= p->len || !is_digit(p->text[p->pos])) return json_fail(p, "bad number");
        while (p->pos < p->len && is_digit(p->text[p->pos])) p->pos++;
    }
    char buf[64];
    size_t n = p->pos - start;
    if (n >= sizeof buf) {
        v->number = 0;
        /* very long literals: only the integer flag matters to our users */
        v->kind = FE_JSON_NUMBER;
        return v;
    }
    memcpy(buf, p->text + start, n);
    buf[n] = 0;
    v->kind = FE_JSON_NUMBER;
    v->number = strtod(buf, NULL);
    if (integer) {
        /* exact 64-bit integer, or not an integer we can use */
        const char *d = buf[0] == '-' ? buf + 1 : buf;
        uint64_t u = 0;
        bool fits = true;
        for (; *d; d++) {
            if (u > (UINT64_MAX - 9) / 10) fits = false;
            u = u * 10 + (uint64_t)(*d - '0');
        }
        if (fits && u <= (uint64_t)INT64_MAX) {
            v->is_integer = true;
            v->integer = buf[0] == '-' ? -(int64_t)u : (int64_t)u;
        }
    }
    return v;
}

static fe_json *parse_value(json_parser *p, int depth);

static fe_json *parse_array(json_parser *p, fe_json *v, int depth)
{
    v->kind = FE_JSON_ARRAY;
    p->pos++;
    int cap = 0;
    skip_ws(p);
    if (p->pos < p->len && p->text[p->pos] == ']') return p->pos++, v;
    for (;;) {
        fe_json *item = parse_value(p, depth + 1);
        if (!item) return NULL;
        if (v->count == cap) {
            int ncap = cap ? cap * 2 : 4;
            v->items =
                sup_arena_grow(p->arena, v->items, (size_t)cap, (size_t)ncap, sizeof *v->items);
            cap = ncap;
        }
        v->items[v->count++] = item;
        skip_ws(p);
        if (p->pos < p->len && p->text[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->text[p->pos] == ']') return p->pos++, v;
        return json_fail(p, "expected ',' or ']' in array");
    }
}

static fe_json *parse_object(json_parser *p, fe_json *v, int depth)
{
    v->kind = FE_JSON_OBJECT;
    p->pos++;
    int cap = 0;
    skip_ws(p);
    if (p->pos < p->len && p->text[p->pos] == '}') return p->pos++, v;
    for (;;) {
        skip_ws(p);
        if (p->pos >= p->len || p->text[p->pos] != '"')
            return json_fail(p, "expected a string key");
        size_t key_pos = p->pos, key_len;
        const char *key = parse_string(p, &key_len);
        if (!key) return NULL;
        if (fe_json_get(v, key)) {
            p->pos = key_pos;
            return json_fail(p, "duplicate key in object");
        }
        skip_ws(p);
        if (p->pos >= p->len || p->text[p->pos] != ':') return json_fail(p, "expected ':'");
        p->pos++;
        fe_json *item = parse_value(p, depth + 1);
        if (!item) return NULL;
        if (v->count == cap) {
            int ncap = cap ? cap * 2 : 8;
            v->items =
                sup_arena_grow(p->arena, v->items, (size_t)cap, (size_t)ncap, sizeof *v->items);
            v->keys = sup_arena_grow(p->arena, v->keys, (size_t)cap, (size_t)ncap, sizeof *v->keys);
            cap = ncap;
        }
        v->keys[v->count] = key;
        v->items[v->count++] = item;
        skip_ws(p);
        if (p->pos < p->len && p->text[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->text[p->pos] == '}') return p->pos++, v;
        return json_fail(p, "expected ',' or '}' in object");
    }
}

static fe_json *parse_value(json_parser *p, int depth)
{
    if (depth > JSON_MAX_DEPTH) return json_fail(p, "nesting too deep");
    skip_ws(p);
    if (p->pos >= p->len) return json_fail(p, "unexpected end of JSON");
    fe_json *v = sup_arena_alloc(p->arena, sizeof *v);
    v->offset = p->pos;
    char c = p->text[p->pos];
    if (c == '{') return parse_object(p, v, depth);
    if (c == '[') return parse_array(p, v, depth);
    if (c == '"') {
        v->kind = FE_JSON_STRING;
        v->string = parse_string(p, &v->string_len);
        return v->string ? v : NULL;
    }
    if (c == '-' || is_digit(c)) return parse_number(p, v);
    if (match_word(p, "true")) return v->kind = FE_JSON_BOOL, v->boolean = true, v;
    if (match_word(p, "false")) return v->kind = FE_JSON_BOOL, v;
    if (match_word(p, "null")) return v->kind = FE_JSON_NULL, v;
    return json_fail(p, "unexpected character");
}

fe_json *fe_json_parse(sup_arena *arena, const char *text, size_t len, char *err, size_t err_size,
                       size_t *err_offset)
{
    json_parser p = {.arena = arena, .text = text, .len = len, .err = err, .err_size = err_size};
    fe_json *v = parse_value(&p, 0);
    if (v) {
        skip_ws(&p);
        if (p.pos != p.len) v = json_fail(&p, "trailing characters after JSON value");
    }
    if (!v && err_offset) *err_offset = p.err_offset;
    return v;
}

const fe_json *fe_json_get(const fe_json *object, const char *key)
{
    if (!object || object->kind != FE_JSON_OBJECT) return NULL;
    for (int i = 0; i < object->count; i++)
        if (strcmp(object->keys[i], key) == 0) return object->items[i];
    return NULL;
}
