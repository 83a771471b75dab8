"""The report's sections about the models: metrics, quality curves, the confusion matrix, the cutoff, feature
importance and drift. Each takes the loaded `Run` and returns its section's HTML (a note when its input is absent).
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from sagecycle.rehearsal import report_kit as kit
from sagecycle.rehearsal.report_data import Predictions, Run, expect_type
from sagecycle.rehearsal.report_kit import BLUE, GREEN, GREY, PALETTE, PURPLE, RED, TEAL, esc, fmt

_TASK_METRICS: Final = {
    "binary": ("auc", "accuracy", "logloss", "f1"),
    "multiclass": ("mlogloss", "accuracy", "auc"),
    "regression": ("rmse", "mae", "r2"),
}


def models(run: Run) -> str:
    if not run.models:
        return kit.note("No models recorded.")
    names = _TASK_METRICS[run.task]
    primaries = [(m.get("evaluation") or {}).get("primary_metric") or {} for m in run.models]
    split_names = {str(p.get("split")) for p in primaries if p.get("split")}
    headers = ["model", "role", *names]
    if run.task == "binary":
        headers.append("cutoff")
    rows = []
    for model, primary in zip(run.models, primaries, strict=True):
        evaluation = model.get("evaluation") or {}
        split = (evaluation.get("splits") or {}).get(primary.get("split") or "test") or {}
        name = f"<code>{esc(model.get('name'))}</code>"
        if model.get("champion"):
            name = f'<span class="star" title="the champion">★</span> {name}'
        if model.get("job") and model.get("job") != model.get("name"):
            name += f'<br><span class="muted small">job <code>{esc(model.get("job"))}</code></span>'
        cells = []
        for metric in names:
            cell = fmt(split.get(metric))
            if metric == primary.get("name"):
                cell = f"<strong>{cell}</strong>"
            cells.append(cell)
        role = str(model.get("role") or "—")
        row = [name, f'<span class="role {esc(role)}">{esc(role)}</span>', *cells]
        if run.task == "binary":
            row.append(fmt((evaluation.get("threshold") or {}).get("value"), 2))
        rows.append(row)
    primary = next((p for p in primaries if p), {})
    where = f" on the {esc(', '.join(sorted(split_names)))} split" if split_names else ""
    gate = (
        f" The bold column, {esc(primary.get('name'))} ({'higher' if primary.get('higher_is_better') else 'lower'} is "
        "better), is the one promotion compares against the champion (★)."
        if primary
        else ""
    )
    note = f"<p>What train.py wrote to each model's evaluation.json{where}.{gate}</p>"
    return note + kit.table(headers, rows, numeric=range(2, len(headers)), cls="models")


def _no_predictions() -> str:
    return kit.note("No predictions on the test split were recorded, so there is nothing to plot here yet.")


def quality(run: Run, predictions: Predictions | None) -> str:
    if predictions is None:
        return _no_predictions()
    if run.task == "binary":
        return _roc_pr(predictions)
    if run.task == "multiclass":
        return _multiclass_quality(run, predictions)
    return _regression_quality(predictions)


def _roc_pr(p: Predictions) -> str:
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

    y, score = p.y_true.astype(int), p.y_score
    if len(np.unique(y)) < 2:
        return kit.note("The test split holds one class only, so ROC and precision–recall curves are undefined.")
    fpr, tpr, _ = roc_curve(y, score)
    precision, recall, _ = precision_recall_curve(y, score)
    auc, ap = roc_auc_score(y, score), average_precision_score(y, score)
    base_rate = float(np.mean(y))
    figure = kit.new_figure(3.9)
    roc, pr = figure.subplots(1, 2)
    roc.plot(fpr, tpr, color=BLUE, label=f"AUC {auc:.4f}")
    roc.plot([0, 1], [0, 1], color=GREY, lw=1, ls="--", label="chance")
    roc.fill_between(fpr, tpr, alpha=0.08, color=BLUE, lw=0)
    pr.plot(recall, precision, color=PURPLE, label=f"average precision {ap:.4f}")
    pr.axhline(base_rate, color=GREY, lw=1, ls="--", label=f"base rate {base_rate:.3f}")
    if p.threshold is not None:
        decided = score >= p.threshold
        positives, negatives = y == 1, y == 0
        tp_rate = float(np.mean(decided[positives])) if positives.any() else 0.0
        fp_rate = float(np.mean(decided[negatives])) if negatives.any() else 0.0
        precision_at = float(np.mean(y[decided])) if decided.any() else 1.0
        label = f"served cutoff {p.threshold:.2f}"
        roc.scatter([fp_rate], [tp_rate], s=60, color=RED, zorder=3, label=label)
        pr.scatter([tp_rate], [precision_at], s=60, color=RED, zorder=3, label=label)
    roc.set(title="ROC", xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1.01))
    pr.set(title="Precision–recall", xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.01))
    roc.legend(loc="lower right")
    pr.legend(loc="lower left")
    caption = (
        f"{esc(p.model)} on the {len(y):,}-row test split. The further the ROC curve bows to the top left, the better "
        "the model ranks positives above negatives (AUC is the area under it). The precision–recall curve shows what "
        "the positive class costs: how much precision is left at each recall, against the dashed base rate. The red "
        "dot is where the endpoint operates, at the cutoff chosen on validation."
    )
    return kit.img(figure, "ROC and precision-recall curves", caption)


def _multiclass_quality(run: Run, p: Predictions) -> str:
    from sklearn.metrics import precision_recall_fscore_support, roc_auc_score, roc_curve

    y = p.y_true.astype(int)
    k = len(run.classes)
    predicted = p.y_score.argmax(axis=1)
    figure = kit.new_figure(3.9)
    roc, bars = figure.subplots(1, 2)
    for c, name in enumerate(run.classes):
        positives = y == c
        if 0 < positives.sum() < len(y):
            fpr, tpr, _ = roc_curve(positives, p.y_score[:, c])
            auc = roc_auc_score(positives, p.y_score[:, c])
            roc.plot(fpr, tpr, color=PALETTE[c % len(PALETTE)], label=f"{name}  AUC {auc:.3f}")
    roc.plot([0, 1], [0, 1], color=GREY, lw=1, ls="--")
    roc.set(title="One-vs-rest ROC per class", xlabel="false positive rate", ylabel="true positive rate",
            xlim=(0, 1), ylim=(0, 1.01))  # fmt: skip
    roc.legend(loc="lower right")
    precision, recall, f1, support = precision_recall_fscore_support(
        y, predicted, labels=list(range(k)), zero_division=0
    )
    x = np.arange(k)
    width = 0.26
    for offset, values, name, colour in ((-1, precision, "precision", BLUE), (0, recall, "recall", TEAL),
                                         (1, f1, "F1", PURPLE)):  # fmt: skip
        bars.bar(x + offset * width, values, width, label=name, color=colour)
    bars.set_xticks(x, [f"{c}\n(n={s:,})" for c, s in zip(run.classes, support, strict=True)])
    bars.set(title="Per class, at the most probable class", ylim=(0, 1.05))
    bars.grid(axis="x", visible=False)
    bars.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    accuracy = float(np.mean(predicted == y))
    caption = (
        f"{esc(p.model)} on the {len(y):,}-row test split ({k} classes, accuracy {accuracy:.4f}). Left: how well each "
        "class is ranked against the rest. Right: precision, recall and F1 per class when the endpoint answers the "
        "most probable class; a short bar next to tall ones is the class the model neglects."
    )
    return kit.img(figure, "one-vs-rest ROC and per-class precision, recall and F1", caption)


def _regression_quality(p: Predictions) -> str:
    y, predicted = p.y_true, p.y_score
    residuals = y - predicted
    rmse = float(np.sqrt(np.mean(residuals**2)))
    mae = float(np.mean(np.abs(residuals)))
    total = float(np.sum((y - y.mean()) ** 2))
    r2 = 1 - float(np.sum(residuals**2)) / total if total > 0 else float("nan")
    figure = kit.new_figure(3.9)
    scatter, resid = figure.subplots(1, 2)
    scatter.scatter(y, predicted, s=9, alpha=0.45, color=BLUE, lw=0)
    low, high = float(min(y.min(), predicted.min())), float(max(y.max(), predicted.max()))
    scatter.plot([low, high], [low, high], color=GREY, lw=1, ls="--", label="perfect")
    scatter.set(title=f"Predicted against actual  (R² {r2:.3f})", xlabel="actual", ylabel="predicted")
    scatter.legend(loc="upper left")
    resid.scatter(predicted, residuals, s=9, alpha=0.45, color=PURPLE, lw=0)
    resid.axhline(0, color=GREY, lw=1, ls="--")
    band = 2 * rmse
    resid.axhspan(-band, band, color=PURPLE, alpha=0.06, lw=0, label=f"±2 RMSE ({band:.3g})")
    resid.set(title=f"Residuals  (RMSE {rmse:.4g}, MAE {mae:.4g})", xlabel="predicted", ylabel="actual − predicted")
    resid.legend(loc="upper left")
    caption = (
        f"{esc(p.model)} on the {len(y):,}-row test split; regression has no ROC, so these take its place. Left: "
        "points on the dashed diagonal are exact; a tilt away from it is systematic under- or over-prediction. Right: "
        "residuals should scatter evenly around zero at every prediction; a funnel or a curve means the error "
        "depends on the size of the prediction."
    )
    return kit.img(figure, "predicted against actual, and residuals", caption)


def confusion(run: Run, p: Predictions | None) -> str:
    if run.task == "regression":
        return kit.note("Regression has no classes, so no confusion matrix: see the residuals under Model quality.")
    if p is None:
        return _no_predictions()
    y = p.y_true.astype(int)
    if run.task == "binary":
        cutoff = 0.5 if p.threshold is None else p.threshold
        predicted = (p.y_score >= cutoff).astype(int)
        classes = run.classes if len(run.classes) == 2 else ["0", "1"]
        what = f"at the served cutoff {cutoff:.2f} (score ≥ cutoff answers {esc(classes[1])})"
        if p.threshold is None:
            what = "at 0.5 (no cutoff was recorded)"
    else:
        predicted = p.y_score.argmax(axis=1)
        classes = run.classes
        what = "at the most probable class"
    k = len(classes)
    matrix = np.bincount(y * k + predicted, minlength=k * k).reshape(k, k)
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    size = min(6.5, 3.4 + 0.6 * k)
    figure = kit.new_figure(size * 0.82, width=size + 1.2)
    axis = figure.add_subplot()
    image = axis.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            colour = "white" if share[i, j] > 0.55 else "#1f2937"
            axis.text(j, i, f"{matrix[i, j]:,}\n{share[i, j]:.1%}", ha="center", va="center", color=colour,
                      fontsize=9 if k <= 4 else 7.5)  # fmt: skip
    axis.set_xticks(range(k), classes, rotation=0 if k <= 4 else 30)
    axis.set_yticks(range(k), classes)
    axis.set(xlabel="predicted", ylabel="true")
    axis.grid(False)
    for spine in axis.spines.values():
        spine.set_visible(False)
    colourbar = figure.colorbar(image, ax=axis, shrink=0.85)
    colourbar.set_label("share of the true class")
    accuracy = float(np.trace(matrix)) / max(int(matrix.sum()), 1)
    caption = (
        f"{esc(p.model)} on the test split {what}; accuracy {accuracy:.4f}. Rows are the true class, so each row's "
        "shares add up to 100%: the diagonal is what the model gets right; the darkest cell off the diagonal is its "
        "most common mistake."
    )
    return kit.img(figure, "confusion matrix", caption)


def cutoff(run: Run, p: Predictions | None) -> str:
    if run.task != "binary":
        return kit.note(f"The cutoff applies to binary models only; a {run.task} model has none to choose.")
    if p is None:
        return _no_predictions()
    from sklearn.metrics import log_loss

    y = p.y_true.astype(int)
    # The seed tutorial's loop: sklearn's log loss of the 0/1 decisions (score > cutoff) at cutoffs 0.01 .. 0.99.
    # On 0/1 decisions each row costs one of two clipped values, so ask sklearn for those two once and count.
    wrong = log_loss([1], [0], labels=[0, 1])
    right = log_loss([1], [1], labels=[0, 1])
    cutoffs = np.round(np.arange(0.01, 1.0, 0.01), 2)
    errors = ((p.y_score[None, :] > cutoffs[:, None]).astype(int) != y[None, :]).sum(axis=1)
    losses = (errors * wrong + (len(y) - errors) * right) / len(y)
    best = int(np.argmin(losses))
    figure = kit.new_figure(3.3)
    axis = figure.add_subplot()
    axis.plot(cutoffs, losses, color=BLUE)
    axis.scatter([cutoffs[best]], [losses[best]], s=50, color=GREEN, zorder=3,
                 label=f"lowest here: {losses[best]:.3f} at {cutoffs[best]:.2f}")  # fmt: skip
    if p.threshold is not None:
        axis.axvline(p.threshold, color=RED, ls="--", lw=1.2, label=f"served cutoff {p.threshold:.2f}")
    axis.set(xlabel="cutoff", ylabel="log loss", xlim=(0, 1))
    axis.legend(loc="upper center")
    caption = (
        "The seed tutorial's plot: for every cutoff from 0.01 to 0.99, the log loss of the 0/1 decisions "
        "(score &gt; cutoff) on the test split. On 0/1 decisions the log loss is proportional to the error rate, so "
        "the curve's floor is the cutoff of best accuracy. Look at how flat the floor is, and whether the served "
        "cutoff (chosen on validation, dashed) sits on it."
    )
    return kit.img(figure, "log loss against the cutoff", caption)


def importance(run: Run) -> str:
    doc = run.doc.get("feature_importance")
    if not doc:
        return kit.note("No feature importance was recorded.")
    expect_type(doc, dict, "run.json feature_importance")
    items = sorted(((str(k), float(v)) for k, v in doc.items()), key=lambda kv: kv[1], reverse=True)
    shown = items[:20]
    figure = kit.new_figure(0.9 + 0.27 * len(shown))
    axis = figure.add_subplot()
    total = sum(v for _, v in items) or 1.0
    axis.barh(range(len(shown)), [v for _, v in shown], color=TEAL, height=0.7)
    for i, (_, value) in enumerate(shown):
        axis.text(value, i, f"  {value / total:.1%}", va="center", fontsize=8, color="#374151")
    axis.set_yticks(range(len(shown)), [k for k, _ in shown])
    axis.set_ylim(len(shown) - 0.5, -0.5)
    axis.set_xlabel("gain")
    axis.grid(axis="y", visible=False)
    axis.margins(x=0.12)
    more = f" (the top {len(shown)} of {len(items)})" if len(items) > len(shown) else ""
    caption = (
        f"The champion's features by gain{more}: the average loss reduction of the splits that use each one, with "
        "its share of the total. The features at the top are the ones whose drift matters most."
    )
    return kit.img(figure, "feature importance by gain", caption)


def drift(run: Run) -> str:
    records = run.drift
    if not records:
        return kit.note(
            "No drift-monitor run has been recorded yet: the monitor runs on its schedule over captured data."
        )
    times = [r["_t"] for r in records]
    features = sorted({str(f) for r in records for f in (r.get("feature_psi") or {})})
    peak = {f: max(float((r.get("feature_psi") or {}).get(f, 0.0)) for r in records) for f in features}
    top = sorted(features, key=lambda f: peak[f], reverse=True)[:6]
    xs = kit.date_numbers(times)
    figure = kit.new_figure(3.7)
    axis = figure.add_subplot()
    for feature in features:
        if feature in top:
            continue
        values = [(r.get("feature_psi") or {}).get(feature, math.nan) for r in records]
        axis.plot(xs, values, color="#cbd5e1", lw=1, zorder=1)
    for i, feature in enumerate(top):
        values = [(r.get("feature_psi") or {}).get(feature, math.nan) for r in records]
        axis.plot(xs, values, color=PALETTE[i % len(PALETTE)], marker="o", ms=3.5, label=feature, zorder=2)
    thresholds = [r.get("threshold") for r in records if r.get("threshold") is not None]
    threshold = thresholds[-1] if thresholds else run.doc.get("drift_threshold")
    if threshold is not None:
        axis.axhline(float(threshold), color=RED, ls="--", lw=1.2, label=f"alarm threshold {float(threshold):g}")
    alarms = [(x, float(r.get("max_psi") or 0)) for x, r in zip(xs, records, strict=True) if r.get("alarm")]
    if alarms:
        axis.scatter([a[0] for a in alarms], [a[1] for a in alarms], marker="^", s=80, color=RED, zorder=4,
                     label="alarm fired", edgecolors="white", linewidths=0.8)  # fmt: skip
    axis.set_ylabel("PSI against the training baseline")
    axis.set_ylim(bottom=0)
    kit.time_axis(axis)
    axis.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    others = len(features) - len(top)
    threshold_text = (
        "The dashed red line is the drift alarm's threshold"
        if threshold is not None
        else "The alarm threshold was not recorded with these runs"
    )
    caption = (
        f"The population stability index of each feature per drift-monitor run ({len(records)} runs): captured "
        f"requests against the baseline train.py wrote. The {len(top)} features that moved most are coloured"
        f"{f', the other {others} grey' if others else ''}. {threshold_text}; red triangles mark runs whose "
        f"maximum PSI set it off ({len(alarms)} here). A line that climbs and stays up is a real shift in that "
        "feature's traffic."
    )
    return kit.img(figure, "drift per feature over time", caption)
