/* An MLP forward and backward in C, served over backprop-harness's worker protocol
 * (docs/worker-protocol.md): JSON lines on stdin/stdout, arrays as raw little-endian
 * buffers after the line. Every activation, both losses, float32 and float64, dL/dx.
 *
 *     cc -O2 -o mlp-worker mlp_worker.c -lm
 *     backprop-harness check --impl cmd:./mlp-worker
 *
 * Built with -DBUG_BIAS_SUM it sums the bias gradient over the batch instead of
 * averaging it: a wrong implementation, to see the harness's report.
 */
#define _POSIX_C_SOURCE 200809L /* getline, clock_gettime */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { IDENTITY, RELU, LEAKY_RELU, TANH, SIGMOID };
enum { CROSS_ENTROPY, MSE };
#define MAX_LAYERS 16
#define MAX_MODELS 256

typedef struct {
    int used, layers, loss, f32;
    long sizes[MAX_LAYERS + 1];
    int acts[MAX_LAYERS];
    void *W[MAX_LAYERS], *b[MAX_LAYERS];
} Model;

static void *xmalloc(size_t n) {
    void *p = calloc(1, n ? n : 1);
    if (!p) { fprintf(stderr, "out of memory\n"); exit(3); }
    return p;
}

#define REAL float
#define NAME(x) x##_f32
#include "mlp_step.h"
#undef REAL
#undef NAME
#define REAL double
#define NAME(x) x##_f64
#include "mlp_step.h"
#undef REAL
#undef NAME

/* --- a minimal JSON reader: enough for the harness's messages ------------------- */

typedef struct Json Json;
struct Json { int type; double num; char *str; int n; char **keys; Json **items; };
enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

static const char *skip(const char *s) { while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') s++; return s; }

static char *parse_string(const char **ps) {
    const char *s = *ps + 1;
    char *out = xmalloc(strlen(s) + 1), *o = out;
    while (*s && *s != '"') {
        if (*s == '\\') {
            s++;
            switch (*s) {
            case 'n': *o++ = '\n'; break;
            case 't': *o++ = '\t'; break;
            case 'r': *o++ = '\r'; break;
            case 'b': *o++ = '\b'; break;
            case 'f': *o++ = '\f'; break;
            case 'u': *o++ = '?'; s += 4; break; /* names here are ASCII */
            default: *o++ = *s;
            }
            s++;
        } else *o++ = *s++;
    }
    *ps = *s ? s + 1 : s;
    return out;
}

static Json *parse(const char **ps) {
    const char *s = skip(*ps);
    Json *j = xmalloc(sizeof *j);
    if (*s == '{' || *s == '[') {
        int object = *s == '{';
        j->type = object ? J_OBJ : J_ARR;
        s = skip(s + 1);
        while (*s && *s != (object ? '}' : ']')) {
            j->keys = realloc(j->keys, sizeof(char *) * (j->n + 1));
            j->items = realloc(j->items, sizeof(Json *) * (j->n + 1));
            j->keys[j->n] = NULL;
            if (object) { j->keys[j->n] = parse_string(&s); s = skip(s) + 1; } /* the ':' */
            j->items[j->n++] = parse(&s);
            s = skip(s);
            if (*s == ',') s = skip(s + 1);
        }
        *ps = *s ? s + 1 : s;
    } else if (*s == '"') {
        j->type = J_STR;
        j->str = parse_string(&s);
        *ps = s;
    } else if (!strncmp(s, "true", 4) || !strncmp(s, "false", 5)) {
        j->type = J_BOOL;
        j->num = *s == 't';
        *ps = s + (*s == 't' ? 4 : 5);
    } else if (!strncmp(s, "null", 4)) {
        *ps = s + 4;
    } else {
        char *end;
        j->type = J_NUM;
        j->num = strtod(s, &end);
        *ps = end > s ? end : s + 1;
    }
    return j;
}

static void release(Json *j) {
    if (!j) return;
    for (int i = 0; i < j->n; i++) { free(j->keys[i]); release(j->items[i]); }
    free(j->keys); free(j->items); free(j->str); free(j);
}

static Json *get(const Json *j, const char *key) {
    if (j && j->type == J_OBJ)
        for (int i = 0; i < j->n; i++) if (!strcmp(j->keys[i], key)) return j->items[i];
    return NULL;
}

static const char *text(const Json *j) { return j && j->type == J_STR ? j->str : ""; }
static double number(const Json *j, double otherwise) { return j && (j->type == J_NUM || j->type == J_BOOL) ? j->num : otherwise; }

/* --- messages: a line, then the raw buffers it lists ----------------------------- */

typedef struct { Json *msg; int count; char **data; long *nbytes; } Message;

static int read_message(Message *m) {
    static char *line = NULL;
    static size_t cap = 0;
    if (getline(&line, &cap, stdin) <= 0) return 0;
    const char *p = line;
    m->msg = parse(&p);
    Json *buffers = get(m->msg, "buffers");
    m->count = buffers ? buffers->n : 0;
    m->data = xmalloc(sizeof(char *) * (size_t)(m->count + 1));
    m->nbytes = xmalloc(sizeof(long) * (size_t)(m->count + 1));
    for (int k = 0; k < m->count; k++) {
        m->nbytes[k] = (long)number(get(buffers->items[k], "nbytes"), 0);
        m->data[k] = xmalloc((size_t)m->nbytes[k]);
        if (fread(m->data[k], 1, (size_t)m->nbytes[k], stdin) != (size_t)m->nbytes[k]) return 0;
    }
    return 1;
}

static void free_message(Message *m) {
    for (int k = 0; k < m->count; k++) free(m->data[k]);
    free(m->data); free(m->nbytes); release(m->msg);
}

/* the bytes of an array leaf {"buffer": k}, and their count */
static char *array(const Message *m, const Json *leaf, long *nbytes) {
    int k = (int)number(get(leaf, "buffer"), -1);
    if (k < 0 || k >= m->count) return NULL;
    *nbytes = m->nbytes[k];
    return m->data[k];
}

/* An answer: its JSON text, built up in `head`, then the arrays it lists, written after it. */
typedef struct {
    char *head, *list; size_t head_len, list_len;
    int count; const void *data[4 * MAX_LAYERS + 8]; long nbytes[4 * MAX_LAYERS + 8];
} Answer;

static void append(char **s, size_t *len, const char *text) {
    size_t n = strlen(text);
    *s = realloc(*s, *len + n + 1);
    memcpy(*s + *len, text, n + 1);
    *len += n;
}

static void add(Answer *a, const char *text) { append(&a->head, &a->head_len, text); }

/* an array leaf {"buffer": k} here, its bytes after the line; dims 0, 1 or 2 */
static void add_array(Answer *a, const void *data, const char *dtype, int dims, long d0, long d1) {
    char leaf[32], desc[160], shape[64] = "";
    long count = (dims > 0 ? d0 : 1) * (dims > 1 ? d1 : 1), nbytes = count * (dtype[2] == '4' ? 4 : 8);
    if (dims == 1) snprintf(shape, sizeof shape, "%ld", d0);
    if (dims == 2) snprintf(shape, sizeof shape, "%ld,%ld", d0, d1);
    snprintf(leaf, sizeof leaf, "{\"buffer\":%d}", a->count);
    snprintf(desc, sizeof desc, "%s{\"dtype\":\"%s\",\"shape\":[%s],\"nbytes\":%ld}", a->count ? "," : "", dtype, shape, nbytes);
    add(a, leaf);
    append(&a->list, &a->list_len, desc);
    a->data[a->count] = data;
    a->nbytes[a->count++] = nbytes;
}

static void send_answer(Answer *a) {
    if (a->count) printf("%s,\"buffers\":[%s]}\n", a->head, a->list);
    else printf("%s}\n", a->head);
    for (int k = 0; k < a->count; k++) fwrite(a->data[k], 1, (size_t)a->nbytes[k], stdout);
    fflush(stdout);
    free(a->head);
    free(a->list);
}

static void fail(long id, const char *why) {
    printf("{\"id\":%ld,\"success\":false,\"error\":\"%s\"}\n", id, why);
    fflush(stdout);
}

/* --- the MLP's messages --------------------------------------------------------- */

static Model models[MAX_MODELS];

static int act_code(const char *name) {
    return !strcmp(name, "relu") ? RELU : !strcmp(name, "leaky_relu") ? LEAKY_RELU : !strcmp(name, "tanh") ? TANH
         : !strcmp(name, "sigmoid") ? SIGMOID : IDENTITY;
}

static void drop(Model *m) {
    for (int l = 0; l < m->layers; l++) { free(m->W[l]); free(m->b[l]); }
    memset(m, 0, sizeof *m);
}

/* copy params [[W0, b0], ...] into the model; 0 when they do not fit its shapes */
static int set_params(Model *m, const Message *msg, const Json *params) {
    int size = m->f32 ? 4 : 8;
    if (!params || params->n != m->layers) return 0;
    for (int l = 0; l < m->layers; l++) {
        long nW, nb;
        char *W = array(msg, params->items[l]->items[0], &nW), *b = array(msg, params->items[l]->items[1], &nb);
        if (!W || !b || nW != size * m->sizes[l] * m->sizes[l + 1] || nb != size * m->sizes[l + 1]) return 0;
        memcpy(m->W[l], W, (size_t)nW);
        memcpy(m->b[l], b, (size_t)nb);
    }
    return 1;
}

static void define(long id, const Message *msg) {
    Json *in = get(msg->msg, "input"), *net = get(in, "network"), *sizes = get(net, "sizes"), *acts = get(net, "activations");
    Json *released = get(in, "release");
    for (int i = 0; released && i < released->n; i++) {
        int k = (int)released->items[i]->num;
        if (k > 0 && k < MAX_MODELS && models[k].used) drop(&models[k]);
    }
    int k = 1;
    while (k < MAX_MODELS && models[k].used) k++;
    if (k == MAX_MODELS || !sizes || !acts || sizes->n < 2 || sizes->n - 1 > MAX_LAYERS || acts->n != sizes->n - 1)
        { fail(id, "cannot define this network (too many models or layers?)"); return; }
    Model *m = &models[k];
    m->used = 1;
    m->layers = acts->n;
    m->f32 = !strcmp(text(get(in, "dtype")), "float32");
    m->loss = !strcmp(text(get(net, "loss")), "mse") ? MSE : CROSS_ENTROPY;
    for (int l = 0; l <= m->layers; l++) m->sizes[l] = (long)sizes->items[l]->num;
    for (int l = 0; l < m->layers; l++) {
        m->acts[l] = act_code(text(acts->items[l]));
        m->W[l] = xmalloc((size_t)((m->f32 ? 4 : 8) * m->sizes[l] * m->sizes[l + 1]));
        m->b[l] = xmalloc((size_t)((m->f32 ? 4 : 8) * m->sizes[l + 1]));
    }
    if (!set_params(m, msg, get(in, "params"))) { drop(m); fail(id, "params are not shaped like the network"); return; }
    printf("{\"id\":%ld,\"success\":true,\"output\":{\"model\":%d}}\n", id, k);
    fflush(stdout);
}

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void evaluate(long id, const Message *msg) {
    Json *in = get(msg->msg, "input");
    const char *function = text(get(msg->msg, "function"));
    int k = (int)number(get(in, "model"), 0);
    if (k <= 0 || k >= MAX_MODELS || !models[k].used) { fail(id, "no such model"); return; }
    Model *m = &models[k];
    if (get(in, "params") && !set_params(m, msg, get(in, "params"))) { fail(id, "params are not shaped like the network"); return; }
    long nx, ny, size = m->f32 ? 4 : 8, width = m->sizes[0], out = m->sizes[m->layers];
    char *x = array(msg, get(in, "x"), &nx), *y = array(msg, get(in, "y"), &ny);
    long n = x ? nx / (size * width) : 0;
    if (!x || !y || n * size * width != nx || ny != (m->loss == MSE ? n * out * size : n * 8))
    { fail(id, "x and y are not shaped like the network's input and output"); return; }
    int grads = strcmp(function, "forward") != 0;
    void *gW[MAX_LAYERS], *gb[MAX_LAYERS], *dx = grads ? xmalloc((size_t)nx) : NULL;
    for (int l = 0; l < m->layers; l++) {
        gW[l] = xmalloc((size_t)(size * m->sizes[l] * m->sizes[l + 1]));
        gb[l] = xmalloc((size_t)(size * m->sizes[l + 1]));
    }
    long runs = !strcmp(function, "time") ? (long)number(get(in, "min_runs"), 1) : 1;
    double min_seconds = !strcmp(function, "time") ? number(get(in, "min_seconds"), 0) : 0, spent = 0;
    long long *ns = xmalloc(sizeof(long long) * 1);
    long count = 0;
    float loss32 = 0;
    double loss64 = 0;
    while (count < runs || spent < min_seconds) {
        long long t0 = now_ns();
        if (m->f32) loss32 = step_f32(m, (float *)x, y, n, grads ? (float **)gW : NULL, (float **)gb, (float *)dx);
        else loss64 = step_f64(m, (double *)x, y, n, grads ? (double **)gW : NULL, (double **)gb, (double *)dx);
        ns = realloc(ns, sizeof(long long) * (size_t)(count + 1));
        ns[count] = now_ns() - t0;
        spent += ns[count++] / 1e9;
    }
    const char *dt = m->f32 ? "<f4" : "<f8";
    Answer a = {0};
    char t[96];
    snprintf(t, sizeof t, "{\"id\":%ld,\"success\":true,\"timings\":[", id);
    add(&a, t);
    for (long r = 0; r < count; r++) {
        snprintf(t, sizeof t, "%s{\"name\":\"evaluate\",\"nanoseconds\":%lld}", r ? "," : "", ns[r]);
        add(&a, t);
    }
    add(&a, "],\"output\":{\"loss\":");
    add_array(&a, m->f32 ? (void *)&loss32 : (void *)&loss64, dt, 0, 0, 0);
    if (!strcmp(function, "step")) {
        add(&a, ",\"grads\":[");
        for (int l = 0; l < m->layers; l++) {
            add(&a, l ? ",[" : "[");
            add_array(&a, gW[l], dt, 2, m->sizes[l + 1], m->sizes[l]);
            add(&a, ",");
            add_array(&a, gb[l], dt, 1, m->sizes[l + 1], 0);
            add(&a, "]");
        }
        add(&a, "],\"dx\":");
        add_array(&a, dx, dt, 2, n, width);
        if (number(get(in, "return_inputs"), 0)) { /* what the step saw, after it: a changed input shows */
            add(&a, ",\"inputs\":{\"params\":[");
            for (int l = 0; l < m->layers; l++) {
                add(&a, l ? ",[" : "[");
                add_array(&a, m->W[l], dt, 2, m->sizes[l + 1], m->sizes[l]);
                add(&a, ",");
                add_array(&a, m->b[l], dt, 1, m->sizes[l + 1], 0);
                add(&a, "]");
            }
            add(&a, "],\"x\":");
            add_array(&a, x, dt, 2, n, width);
            add(&a, ",\"y\":");
            if (m->loss == MSE) add_array(&a, y, dt, 2, n, out);
            else add_array(&a, y, "<i8", 1, n, 0);
            add(&a, "}");
        }
    }
    add(&a, "}");
    send_answer(&a);
    for (int l = 0; l < m->layers; l++) { free(gW[l]); free(gb[l]); }
    free(dx);
    free(ns);
}

int main(void) {
    Message msg;
    while (read_message(&msg)) {
        long id = (long)number(get(msg.msg, "id"), 0);
        const char *kind = text(get(msg.msg, "kind"));
        if (!strcmp(kind, "start")) {
            printf("{\"id\":%ld,\"tool\":\"c-mlp\",\"config\":{\"protocol\":\"backprop-harness-worker/1\","
                   "\"arrays\":\"buffer\",\"description\":\"an MLP in C (workers/c)\",\"capabilities\":{"
                   "\"dtypes\":[\"float32\",\"float64\"],\"input_grad\":true}}}\n", id);
            fflush(stdout);
        } else if (!strcmp(kind, "define")) define(id, &msg);
        else if (!strcmp(kind, "evaluate")) evaluate(id, &msg);
        else { printf("{\"id\":%ld}\n", id); fflush(stdout); }
        free_message(&msg);
    }
    return 0;
}
