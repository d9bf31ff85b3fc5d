/* One MLP step -- forward, loss, backward -- in the floating type REAL. Included
 * twice by mlp_worker.c: once with REAL float (NAME(x) x##_f32), once with REAL
 * double (NAME(x) x##_f64). Sums accumulate in double; everything stored is REAL.
 *
 * Layer l: z = a W^T + b, a' = act(z), W shaped (out, in) row-major, as
 * torch.nn.Linear. Losses are means: cross-entropy over the batch, MSE over every
 * element. The backward runs the forward in reverse: dz = da * act'(z), dW = dz^T a,
 * db = sum over the batch of dz, da_below = dz W.
 */

static REAL NAME(act)(int kind, REAL z) {
    switch (kind) {
    case RELU: return z > 0 ? z : 0;
    case LEAKY_RELU: return z > 0 ? z : (REAL)0.01 * z;
    case TANH: return (REAL)tanh(z);
    case SIGMOID: { /* never exp of a large positive number */
        REAL e = (REAL)exp(-fabs((double)z));
        return z >= 0 ? 1 / (1 + e) : e / (1 + e);
    }
    default: return z;
    }
}

/* d act / dz, from the activation's output a (relu'(0) = 0: a valid subgradient) */
static REAL NAME(slope)(int kind, REAL a) {
    switch (kind) {
    case RELU: return a > 0 ? 1 : 0;
    case LEAKY_RELU: return a > 0 ? 1 : (REAL)0.01;
    case TANH: return 1 - a * a;
    case SIGMOID: return a * (1 - a);
    default: return 1;
    }
}

/* The mean loss; with grads (gW[l], gb[l] shaped like the parameters) also the
 * gradients, and with dx (n x sizes[0]) dL/dx. y: int64 labels or REAL targets. */
static REAL NAME(step)(const Model *m, const REAL *x, const void *y, long n, REAL **gW, REAL **gb, REAL *dx) {
    int L = m->layers;
    REAL *a[MAX_LAYERS + 1];
    a[0] = (REAL *)x;
    for (int l = 0; l < L; l++) {
        long in = m->sizes[l], out = m->sizes[l + 1];
        const REAL *W = m->W[l], *b = m->b[l];
        a[l + 1] = xmalloc(sizeof(REAL) * (size_t)(n * out));
        for (long i = 0; i < n; i++)
            for (long j = 0; j < out; j++) {
                double z = b[j];
                for (long k = 0; k < in; k++) z += (double)a[l][i * in + k] * W[j * in + k];
                a[l + 1][i * out + j] = NAME(act)(m->acts[l], (REAL)z);
            }
    }
    long out = m->sizes[L];
    REAL *o = a[L], *delta = xmalloc(sizeof(REAL) * (size_t)(n * out));
    double total = 0;
    if (m->loss == CROSS_ENTROPY) { /* softmax + negative log-likelihood, max subtracted */
        const int64_t *label = y;
        for (long i = 0; i < n; i++) {
            REAL *row = o + i * out, top = row[0];
            for (long j = 1; j < out; j++) top = row[j] > top ? row[j] : top;
            double sum = 0;
            for (long j = 0; j < out; j++) sum += exp((double)row[j] - top);
            total += log(sum) + top - row[label[i]];
            for (long j = 0; j < out; j++)
                delta[i * out + j] = (REAL)((exp((double)row[j] - top) / sum - (j == label[i])) / n);
        }
        total /= n;
    } else { /* mean of (o - y)^2 over every element; its gradient 2 (o - y) / (n out) */
        const REAL *target = y;
        for (long e = 0; e < n * out; e++) {
            double d = (double)o[e] - target[e];
            total += d * d;
            delta[e] = (REAL)(2 * d / (double)(n * out));
        }
        total /= (double)(n * out);
    }
    if (gW) {
        for (int l = L - 1; l >= 0; l--) {
            long in = m->sizes[l], width = m->sizes[l + 1];
            for (long e = 0; e < n * width; e++) delta[e] *= NAME(slope)(m->acts[l], a[l + 1][e]); /* dz */
            for (long j = 0; j < width; j++) {
                double db = 0;
                for (long i = 0; i < n; i++) db += delta[i * width + j];
#ifdef BUG_BIAS_SUM
                gb[l][j] = (REAL)(db * n); /* the bug to catch: the bias gradient summed over the batch, not averaged */
#else
                gb[l][j] = (REAL)db;
#endif
                for (long k = 0; k < in; k++) {
                    double dw = 0;
                    for (long i = 0; i < n; i++) dw += (double)delta[i * width + j] * a[l][i * in + k];
                    gW[l][j * in + k] = (REAL)dw;
                }
            }
            if (l == 0 && !dx) break;
            REAL *below = l == 0 ? dx : xmalloc(sizeof(REAL) * (size_t)(n * in));
            for (long i = 0; i < n; i++)
                for (long k = 0; k < in; k++) {
                    double s = 0;
                    for (long j = 0; j < width; j++) s += (double)delta[i * width + j] * ((const REAL *)m->W[l])[j * in + k];
                    below[i * in + k] = (REAL)s;
                }
            free(delta);
            delta = below;
        }
    }
    if (delta != dx) free(delta);
    for (int l = 1; l <= L; l++) free(a[l]);
    return (REAL)total;
}
