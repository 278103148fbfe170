#!/usr/bin/python3
"""Train the Text2Brain-style network on the public NeuroQuery corpus and export it to ONNX.

    /usr/bin/python3 neural/train.py --data ../shared/data --settings neural/settings.json --out build/neural

The network reads the query's TF-IDF vector (the featurizer's, over the vocabulary's features, in
their order) and predicts the article map of ../shared/docs/model.md (the peaks' count image,
blurred at 9 mm FWHM, masked, divided by its mean): an encoder to a dense code, a linear layer
reshaped to a small 3D grid, three ConvTranspose3d blocks (batch norm, ReLU) up to the 4 mm grid, a
final Conv3d, cropped to 46×55×46, the mask voxels gathered.

Split: numpy.random.RandomState(0).permutation(13459); the first 1,346 articles are held out and
never seen in training; of the rest, a tenth (fixed seed) is the validation set that picks the epoch
(early stopping) and the learning rate's decay. The held-out figures (mean Pearson r, Recall@10)
are measured on the trained network in PyTorch (the export is checked to compute the same maps),
beside two baselines on the same split: the training-mean map, and a ridge regression on
NeuroQuery's smoothed features.

The served output is a z-like map: z_v = (ŷ_v − ȳ_v) / (c · σ_v), with ȳ the training-mean map,
σ_v the standard deviation of the training residuals at voxel v (as NeuroQuery's residual_var), and
one scale c chosen so that single-term queries put as many voxels above z = 3.1 (median over a
fixed sample of terms) as NeuroQuery's z-maps of the same terms: thresholds mean the same in both.

Writes, in --out: model.onnx (input "tfidf" float32 [1, features] → output "z" float32 [1, voxels]
in mask order), neural.json (settings, figures, the features without a map, each feature's map
weight, timings), and a log of every epoch in neural.json too.
"""

import argparse
import csv
import gzip
import json
import math
import os
import sys
import time

import numpy as np
import scipy.ndimage
import scipy.sparse
import torch
from torch import nn

N_ARTICLES = 13459
HELD_OUT = 1346
DIMS = (46, 55, 46)
FWHM_MM = 9.0
VOXEL_MM = 4.0


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


# ---- data -----------------------------------------------------------------------------------

def load_mask(path):
    import nibabel  # Debian's python3-nibabel (make tools)
    img = nibabel.load(path)
    data = np.asarray(img.dataobj)
    if data.shape != DIMS:
        sys.exit(f"mask {path}: shape {data.shape}, want {DIMS}")
    return data.reshape(-1) != 0  # C order: k fastest, the mask order of the bundle


def load_tfidf(model_dir):
    z = np.load(os.path.join(model_dir, "corpus_tfidf.npz"), allow_pickle=False)
    x = scipy.sparse.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
    return x.astype(np.float32)


def load_pmids(model_dir):
    with open(os.path.join(model_dir, "corpus_metadata.csv"), newline="") as f:
        r = csv.reader(f)
        next(r)
        return [int(row[0]) for row in r]


def article_maps(corpus_dir, pmids, rows, mask):
    """The article maps of the given rows (indices into pmids): masked, mean-normalised, float32;
    ok[i] is False for an article with no peak in the mask (no map)."""
    want = {pmids[i]: n for n, i in enumerate(rows)}
    counts = [[] for _ in rows]
    with gzip.open(os.path.join(corpus_dir, "coordinates.tsv.gz"), "rt", newline="") as f:
        r = csv.reader(f, delimiter="\t")
        head = next(r)
        ci = [head.index(c) for c in ("id", "x", "y", "z")]
        for row in r:
            n = want.get(int(row[ci[0]]))
            if n is None:
                continue
            v = [math.floor((float(row[ci[1]]) + 90) / 4), math.floor((float(row[ci[2]]) + 126) / 4),
                 math.floor((float(row[ci[3]]) + 72) / 4)]
            if all(0 <= v[a] < DIMS[a] for a in range(3)):
                counts[n].append(v)
    sigma = FWHM_MM / (2 * math.sqrt(2 * math.log(2))) / VOXEL_MM
    maps = np.zeros((len(rows), int(mask.sum())), np.float32)
    ok = np.zeros(len(rows), bool)
    vol = np.zeros(DIMS, np.float64)
    for n, peaks in enumerate(counts):
        if not peaks:
            continue
        vol[:] = 0
        for i, j, k in peaks:
            vol[i, j, k] += 1
        b = scipy.ndimage.gaussian_filter(vol, sigma, mode="reflect", truncate=4.0).reshape(-1)[mask]
        m = b.mean()
        if m > 0:
            maps[n] = b / m
            ok[n] = True
    return maps, ok


# ---- the network ----------------------------------------------------------------------------

# ConvTranspose3d(kernel 4, stride 2, padding 1) in one dimension: an even output 2m reads input m
# (tap 1) and m−1 (tap 3); an odd one 2m+1 reads m+1 (tap 0) and m (tap 2). Over the input offsets
# −1, 0, +1, each output parity's taps are:
_PHASE_TAPS = [[3, 1, None], [None, 2, 0]]


class PhaseConvTranspose3d(nn.Module):
    """A ConvTranspose3d(kernel 4, stride 2, padding 1), the very same function and weights, computed
    as one Conv3d at the input's resolution whose 8·out channels are the output's 2×2×2 parities,
    then interleaved. This PyTorch (Debian's 1.13) runs ConvTranspose3d on a slow reference path and
    Conv3d on oneDNN: the same layer trains about twice as fast so. Exported as a real
    ConvTranspose3d (conv_transpose); check() proves the two agree."""

    def __init__(self, cin, cout):
        super().__init__()
        ref = nn.ConvTranspose3d(cin, cout, 4, stride=2, padding=1)  # its initialisation
        self.weight = nn.Parameter(ref.weight.detach().clone())
        self.bias = nn.Parameter(ref.bias.detach().clone())
        self.cin, self.cout = cin, cout
        idx = torch.full((8, 27), 64, dtype=torch.long)  # 64: a zero
        for p in range(8):
            pa, pb, pc = p >> 2, (p >> 1) & 1, p & 1
            for q in range(27):
                ta, tb, tc = _PHASE_TAPS[pa][q // 9], _PHASE_TAPS[pb][(q // 3) % 3], _PHASE_TAPS[pc][q % 3]
                if None not in (ta, tb, tc):
                    idx[p, q] = ta * 16 + tb * 4 + tc
        self.register_buffer("taps", idx, persistent=False)

    def forward(self, x):
        w = torch.cat([self.weight.reshape(self.cin, self.cout, 64), self.weight.new_zeros(self.cin, self.cout, 1)], 2)
        k = w[:, :, self.taps].permute(1, 2, 0, 3).reshape(self.cout * 8, self.cin, 3, 3, 3)
        y = nn.functional.conv3d(x, k, padding=1)
        b, _, d, h, wd = y.shape
        y = y.view(b, self.cout, 2, 2, 2, d, h, wd).permute(0, 1, 5, 2, 6, 3, 7, 4)
        return y.reshape(b, self.cout, 2 * d, 2 * h, 2 * wd) + self.bias.view(1, -1, 1, 1, 1)

    def conv_transpose(self):
        m = nn.ConvTranspose3d(self.cin, self.cout, 4, stride=2, padding=1)
        m.weight.data.copy_(self.weight.data)
        m.bias.data.copy_(self.bias.data)
        return m

    @staticmethod
    def check():
        torch.manual_seed(1)
        m = PhaseConvTranspose3d(3, 2)
        x = torch.rand(2, 3, 4, 5, 3)
        err = float((m(x) - m.conv_transpose()(x)).abs().max())
        if err > 1e-5:
            sys.exit(f"PhaseConvTranspose3d differs from ConvTranspose3d by {err}")


class PointwiseConv3d(nn.Module):
    """A Conv3d of kernel 1 to one channel, the same function and weights, computed as a weighted sum
    of the channels: this PyTorch's Conv3d to one channel trains slowly at the grid's full size.
    Exported as a real Conv3d (conv)."""

    def __init__(self, cin):
        super().__init__()
        ref = nn.Conv3d(cin, 1, 1)
        self.weight = nn.Parameter(ref.weight.detach().clone())
        self.bias = nn.Parameter(ref.bias.detach().clone())

    def forward(self, x):
        return (x * self.weight.view(1, -1, 1, 1, 1)).sum(1, keepdim=True) + self.bias.view(1, 1, 1, 1, 1)

    def conv(self):
        m = nn.Conv3d(self.weight.shape[1], 1, 1)
        m.weight.data.copy_(self.weight.data)
        m.bias.data.copy_(self.bias.data)
        return m


class Text2BrainNet(nn.Module):
    """TF-IDF → dense code → linear to C×6×7×6 → three ConvTranspose3d blocks → Conv3d, cropped to
    the 4 mm grid, the mask voxels gathered (a gather, which keeps the exported graph simple)."""

    def __init__(self, n_features, mask, hidden, channels, dropout, input_dropout, out_kernel=3):
        super().__init__()
        c0 = channels[0]
        self.channels = c0
        self.encoder = nn.Sequential(nn.Dropout(input_dropout), nn.Linear(n_features, hidden), nn.ReLU(),
                                     nn.Dropout(dropout))
        self.to_grid = nn.Linear(hidden, c0 * 6 * 7 * 6)
        blocks = []
        for a, b in zip(channels[:-1], channels[1:]):
            blocks += [PhaseConvTranspose3d(a, b), nn.BatchNorm3d(b), nn.ReLU()]
        self.decoder = nn.Sequential(*blocks)
        self.out = PointwiseConv3d(channels[-1]) if out_kernel == 1 else nn.Conv3d(channels[-1], 1, out_kernel, padding=out_kernel // 2)
        self.register_buffer("voxels", torch.from_numpy(np.flatnonzero(mask)).long())

    def for_export(self):
        """The same network with real ConvTranspose3d layers, for torch.onnx.export."""
        for i, m in enumerate(self.decoder):
            if isinstance(m, PhaseConvTranspose3d):
                self.decoder[i] = m.conv_transpose()
        if isinstance(self.out, PointwiseConv3d):
            self.out = self.out.conv()
        return self

    def forward(self, x):
        g = self.to_grid(self.encoder(x)).view(-1, self.channels, 6, 7, 6)
        v = self.out(self.decoder(g))[:, 0, 1:47, :55, 1:47]  # 48×56×48 → 46×55×46
        return v.reshape(v.shape[0], -1).index_select(1, self.voxels)


class Served(nn.Module):
    """What the bundle serves: the network's map, standardised per voxel."""

    def __init__(self, net, scale):
        super().__init__()
        self.net = net  # predicts ŷ − ȳ: it learns the maps' differences from the training mean
        self.register_buffer("inv_scale", torch.from_numpy((1 / scale).astype(np.float32)))

    def forward(self, tfidf):
        return self.net(tfidf) * self.inv_scale


class AsVolume(nn.Module):
    """The served map written into the grid's volume (zero outside the mask), 1×46×55×46."""

    def __init__(self, served, voxels):
        super().__init__()
        self.served = served
        self.register_buffer("voxels", voxels)

    def forward(self, tfidf):
        z = self.served(tfidf)
        vol = torch.zeros(z.shape[0], DIMS[0] * DIMS[1] * DIMS[2], dtype=z.dtype)
        vol[:, self.voxels] = z
        return vol.view(-1, *DIMS)


# ---- figures --------------------------------------------------------------------------------

def standardise_rows(a):
    a = a - a.mean(1, keepdims=True)
    n = np.linalg.norm(a, axis=1, keepdims=True)
    n[n == 0] = 1
    return a / n


def figures(pred, actual):
    """Mean Pearson r of each prediction with its own article's map, and Recall@10 of finding that
    map among all of them from the prediction."""
    p, a = standardise_rows(pred.astype(np.float64)), standardise_rows(actual.astype(np.float64))
    r = (p * a).sum(1)
    sims = p @ a.T
    own = np.diag(sims)
    rank = (sims > own[:, None]).sum(1)  # maps that beat the article's own
    return {"pearson_r": float(r.mean()), "recall_at_10": float((rank < 10).mean()), "articles": int(len(r))}


def predict(net, x, batch=256):
    net.eval()
    out = []
    with torch.no_grad():
        for s in range(0, x.shape[0], batch):
            xb = torch.from_numpy(x[s:s + batch].toarray() if scipy.sparse.issparse(x) else x[s:s + batch])
            out.append(net(xb).numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


class NeuroQuery:
    """The shared NeuroQuery model's smoothing and z-maps (../shared/docs/model.md), in float64."""

    def __init__(self, model_dir):
        def npy(p):
            return np.load(os.path.join(model_dir, p), allow_pickle=False)
        self.V = npy("smoothing/V.npy").astype(np.float64)
        self.w = float(npy("smoothing/smoothing_weight.npy"))
        vvt_norm = np.sqrt(((self.V @ (self.V.T @ self.V)) * self.V).sum(1))
        vvt_norm[vvt_norm == 0] = np.inf
        self.Vn = self.V / vvt_norm[:, None]
        self.coef = npy("regression/coef.npy").astype(np.float64)
        M = npy("regression/M.npy").astype(np.float64)
        self.G = M @ M.T
        self.var = npy("regression/residual_var.npy").astype(np.float64)
        self.sel = npy("regression/selected_features.npy").astype(np.int64)

    def smooth(self, x):
        x = x.toarray() if scipy.sparse.issparse(x) else x
        x = x.astype(np.float64)
        return self.w * (x @ self.Vn) @ self.V.T + (1 - self.w) * x

    def z(self, x):
        xd = self.smooth(x)[:, self.sel]
        q = ((xd @ self.G) * xd).sum(1)
        sd = np.maximum(np.sqrt(q[:, None] * self.var[None, :]), 1e-24)
        return (xd @ self.coef.T) / sd


def ridge_baseline(nq, x_train, y_train, x_val, y_val, x_test, y_test, lambdas):
    """Ridge from NeuroQuery's smoothed TF-IDF to the article maps, trained on the training part,
    λ picked on the validation set: the linear method on this split (NeuroQuery's smoothing was
    learned from the whole corpus's term co-occurrences, so it saw the held-out abstracts' words,
    not their maps)."""
    xs = nq.smooth(x_train)
    mean_x, mean_y = xs.mean(0), y_train.mean(0, dtype=np.float64)
    xs -= mean_x
    evals, evecs = np.linalg.eigh(xs.T @ xs)
    xty = xs.T @ (y_train.astype(np.float64) - mean_y)
    proj = evecs.T @ xty
    best = None
    for lam in lambdas:
        w = evecs @ (proj / (evals + lam)[:, None])
        f = figures((nq.smooth(x_val) - mean_x) @ w + mean_y, y_val)
        log(f"ridge λ={lam:g}: validation r={f['pearson_r']:.4f}")
        if best is None or f["pearson_r"] > best[1]["pearson_r"]:
            best = (lam, f, w)
    lam, _, w = best
    f = figures((nq.smooth(x_test) - mean_x) @ w + mean_y, y_test)
    f["lambda"] = lam
    return f


# ---- training -------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="the shared data folder (neuroquery_model/, neuroquery_corpus/)")
    ap.add_argument("--settings", required=True, help="a JSON file of settings (neural/settings.json)")
    ap.add_argument("--out", required=True, help="folder for model.onnx and neural.json")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    with open(args.settings) as f:
        cfg = json.load(f)
    t_start = time.time()
    PhaseConvTranspose3d.check()
    torch.manual_seed(cfg["seed"])
    torch.set_num_threads(args.threads)
    model_dir = os.path.join(args.data, "neuroquery_model")
    corpus_dir = os.path.join(args.data, "neuroquery_corpus")

    mask = load_mask(os.path.join(model_dir, "mask_img.nii.gz"))
    tfidf = load_tfidf(model_dir)
    pmids = load_pmids(model_dir)
    if tfidf.shape[0] != N_ARTICLES or len(pmids) < N_ARTICLES:
        sys.exit(f"want {N_ARTICLES} articles, the corpus has {tfidf.shape[0]} TF-IDF rows and {len(pmids)} pmids")
    n_features = tfidf.shape[1]

    perm = np.random.RandomState(0).permutation(N_ARTICLES)
    test_rows, rest = perm[:HELD_OUT], perm[HELD_OUT:]
    rng = np.random.RandomState(cfg["seed"])
    rest = rest[rng.permutation(len(rest))]
    n_val = len(rest) // 10
    val_rows, train_rows = rest[:n_val], rest[n_val:]
    # A small run (make test) trains on a subset: the first of each part, the split unchanged.
    if cfg.get("train_articles"):
        train_rows = train_rows[:cfg["train_articles"]]
        val_rows = val_rows[:cfg["val_articles"]]
        test_rows = test_rows[:cfg["test_articles"]]

    log(f"article maps: {len(train_rows)} training, {len(val_rows)} validation, {len(test_rows)} held out")
    t = time.time()
    rows = np.concatenate([train_rows, val_rows, test_rows])
    maps, ok = article_maps(corpus_dir, pmids, rows, mask)
    parts = {}
    s = 0
    for name, r in (("train", train_rows), ("val", val_rows), ("test", test_rows)):
        keep = ok[s:s + len(r)]
        parts[name] = (tfidf[r[keep]], maps[s:s + len(r)][keep], r[keep])
        s += len(r)
    del maps
    log(f"maps in {time.time() - t:.1f} s; with a map: " + ", ".join(f"{k} {len(v[2])}" for k, v in parts.items()))
    x_tr, y_tr, _ = parts["train"]
    x_va, y_va, _ = parts["val"]
    x_te, y_te, _ = parts["test"]
    y_mean = y_tr.mean(0, dtype=np.float64).astype(np.float32)

    net = Text2BrainNet(n_features, mask, cfg["hidden"], cfg["channels"], cfg["dropout"], cfg["input_dropout"],
                        cfg["out_kernel"])
    opt = torch.optim.AdamW(net.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    steps_per_epoch = math.ceil(x_tr.shape[0] / cfg["batch"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg["lr"], epochs=cfg["epochs"],
                                                steps_per_epoch=steps_per_epoch, pct_start=cfg["warmup"])
    # The targets are learnt as differences from the training mean, so that the first steps are
    # not spent learning the average map.
    y_mean_t = torch.from_numpy(y_mean)
    history, best, best_state, patience = [], -1.0, None, 0
    for epoch in range(cfg["epochs"]):
        t = time.time()
        net.train()
        order = np.random.RandomState(cfg["seed"] + epoch).permutation(x_tr.shape[0])
        total = 0.0
        for s in range(0, len(order), cfg["batch"]):
            idx = order[s:s + cfg["batch"]]
            xb = torch.from_numpy(x_tr[idx].toarray())
            yb = torch.from_numpy(y_tr[idx]) - y_mean_t
            loss = nn.functional.mse_loss(net(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss) * len(idx)
        val = figures(predict(net, x_va) + y_mean, y_va)
        history.append({"epoch": epoch + 1, "train_mse": total / len(order), "val_r": val["pearson_r"],
                        "val_recall_at_10": val["recall_at_10"], "seconds": round(time.time() - t, 1)})
        log(f"epoch {epoch + 1}: train MSE {total / len(order):.4f}, validation r {val['pearson_r']:.4f}, "
            f"Recall@10 {val['recall_at_10']:.3f}, {time.time() - t:.0f} s")
        if val["pearson_r"] > best:
            best, patience = val["pearson_r"], 0
            best_state = {k: v.clone() for k, v in net.state_dict().items()}
        else:
            patience += 1
            if patience >= cfg["patience"]:
                log(f"no better for {patience} epochs: stopping")
                break
    net.load_state_dict(best_state)
    best_epoch = max(history, key=lambda h: h["val_r"])["epoch"]
    t_trained = time.time()

    # Standardisation: training residuals per voxel, one scale matched to NeuroQuery's z-maps.
    pred_tr = predict(net, x_tr) + y_mean
    sigma = (y_tr - pred_tr).std(0, dtype=np.float64)
    sigma = np.maximum(sigma, sigma[sigma > 0].min() if (sigma > 0).any() else 1.0)
    del pred_tr
    nq = NeuroQuery(model_dir)
    seen = np.asarray((x_tr != 0).sum(0)).ravel() > 0
    nq_mapped = np.zeros(n_features, bool)
    for s in range(0, n_features, 1024):  # NeuroQuery's map of each feature alone: zero or not
        rows = np.arange(s, min(s + 1024, n_features))
        e = np.zeros((len(rows), n_features))
        e[np.arange(len(rows)), rows] = 1
        nq_mapped[rows] = np.abs(nq.smooth(e)[:, nq.sel]).sum(1) > 0
    candidates = np.flatnonzero(seen & nq_mapped)
    sample = np.random.RandomState(1).choice(candidates, min(cfg["calibration_terms"], len(candidates)), replace=False)
    e = np.zeros((len(sample), n_features), np.float32)
    e[np.arange(len(sample)), sample] = 1
    dev = predict(net, e) / sigma  # each term's ŷ − ȳ, in units of σ
    nq_above = np.median((nq.z(e) >= 3.1).mean(1))
    # c such that the median share of voxels with dev / c ≥ 3.1 equals NeuroQuery's.
    lo, hi = 1e-6, 1e6
    for _ in range(200):
        c = math.sqrt(lo * hi)
        if np.median((dev / c >= 3.1).mean(1)) > nq_above:
            lo = c
        else:
            hi = c
    calibrated = lo > 1e-6 and hi < 1e6
    if not calibrated:
        # No scale reaches NeuroQuery's share: the network's maps hardly depend on the text (the
        # tiny test run's do not). Plain residual units then, and neural.json says so.
        log(f"standardisation: no scale matches NeuroQuery's share (c ran to {c:.3g}); using c = 1")
        c = 1.0
    scale = c * sigma
    log(f"standardisation: c = {c:.4g} (NeuroQuery's median share of voxels ≥ 3.1 on {len(sample)} terms: {nq_above:.4f})")

    served = Served(net, scale)
    served.eval()

    # Held-out figures: the network, the training mean, the ridge baseline.
    result = {"held_out": {}}
    raw_te = predict(net, x_te) + y_mean
    result["held_out"]["neural"] = figures(raw_te, y_te)
    result["held_out"]["neural_z"] = figures(predict(served, x_te), y_te)
    result["held_out"]["training_mean"] = figures(np.tile(y_mean, (len(y_te), 1)), y_te)
    if cfg.get("ridge_baseline", True):
        t = time.time()
        result["held_out"]["ridge_smoothed_tfidf"] = ridge_baseline(nq, x_tr, y_tr, x_va, y_va, x_te, y_te, cfg["ridge_lambdas"])
        log(f"ridge baseline in {time.time() - t:.0f} s")
    for k, v in result["held_out"].items():
        log(f"held out, {k}: r = {v['pearson_r']:.4f}, Recall@10 = {100 * v['recall_at_10']:.1f} %")

    # Each feature's map weight (how far its own map moves from the mean, in z units) for the
    # related terms, and the features never seen in training, which have no map.
    norms = np.zeros(n_features)
    mapped = np.flatnonzero(seen)
    for s in range(0, len(mapped), 256):
        idx = mapped[s:s + 256]
        e = np.zeros((len(idx), n_features), np.float32)
        e[np.arange(len(idx)), idx] = 1
        with torch.no_grad():
            norms[idx] = np.linalg.norm(served(torch.from_numpy(e)).numpy(), axis=1)

    log(f"map weights of {len(mapped)} features")
    os.makedirs(args.out, exist_ok=True)
    onnx_path = os.path.join(args.out, "model.onnx")
    probe = torch.from_numpy(x_te[:4].toarray())
    with torch.no_grad():
        before = served(probe)
        served.net.for_export()
        err = float((served(probe) - before).abs().max())
    if err > 1e-3 * max(1.0, float(before.abs().max())):
        sys.exit(f"the export's layers differ from the trained ones by {err}")
    # The bundle's contract (docs in neural/README.md): one float32 input of the vocabulary's
    # features, one map output, in the mask's voxels or as the grid's volume; the tensors' names
    # are the export's own, which the manifest records. The tiny model of the tests exports the
    # other layout and other names, so that the runtime is seen to follow the manifest.
    layout = cfg.get("output_layout", "mask")
    in_name, out_name = cfg.get("input_name", "tfidf"), cfg.get("output_name", "z")
    exported, out_shape = served, [1, int(mask.sum())]
    if layout == "volume":
        exported, out_shape = AsVolume(served, net.voxels), [1, *DIMS]
    elif layout != "mask":
        sys.exit(f"output_layout {layout!r}: want mask or volume")
    with torch.no_grad():
        if layout == "volume" and not torch.equal(exported(probe).reshape(len(probe), -1)[:, net.voxels], served(probe)):
            sys.exit("the volume output does not hold the mask's voxels")
    torch.onnx.export(exported, torch.zeros(1, n_features), onnx_path, input_names=[in_name], output_names=[out_name],
                      opset_version=13, do_constant_folding=True)
    meta = {
        "kind": "text2brain-nn",
        "name": cfg["name"],
        "description": cfg["description"],
        "input": {"name": in_name, "shape": [1, n_features], "type": "float32"},
        "output": {"name": out_name, "shape": out_shape, "type": "float32", "role": "map"},
        "settings": cfg,
        "split": {"permutation": "numpy.random.RandomState(0).permutation(13459)", "held_out": HELD_OUT,
                  "train": len(train_rows), "validation": len(val_rows), "test": len(test_rows),
                  "with_maps": {k: int(len(v[2])) for k, v in parts.items()}},
        "best_epoch": best_epoch,
        "history": history,
        "standardisation": {"c": c, "calibrated": calibrated, "calibration_terms": int(len(sample)),
                            "neuroquery_median_share_above_3_1": float(nq_above)},
        "figures": result["held_out"],
        "mapped_features": [int(j) for j in mapped],
        "map_norms": [float(norms[j]) for j in mapped],
        "seconds": {"training": round(t_trained - t_start, 1), "total": round(time.time() - t_start, 1)},
        "threads": args.threads,
        "torch": torch.__version__,
    }
    with open(os.path.join(args.out, "neural.json"), "w") as f:
        json.dump(meta, f, indent=1)
    log(f"wrote {onnx_path} ({os.path.getsize(onnx_path) / 1e6:.1f} MB) and neural.json in {time.time() - t_start:.0f} s")


if __name__ == "__main__":
    main()
