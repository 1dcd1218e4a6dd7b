"""Markdown table of the KLUE-RE ablation runs at their shared step (see BENCHMARKS.md).

  python scripts/re_ablation_table.py
"""
import json, pathlib
rows = [("typed markers, CE, flat, all no_relation (headline run, its step 203)", "runs/re-headline/history.jsonl", "")]
for name, label, flags in [("markers-none", "no markers", "--markers none"), ("focal", "focal loss (gamma 2)", "--loss focal"),
                           ("hierarchical", "hierarchical (family, then label)", "--hierarchical"),
                           ("undersample", "no_relation undersampled to 50 % per epoch", "--no-relation-keep 0.5"),
                           ("label-smoothing", "label smoothing 0.1", "--loss label_smoothing"),
                           ("pretrain-1", "span-masking pretraining on all RE training sentences", "--backbone runs/e5-re-1"),
                           ("pretrain-0.3", "span-masking pretraining, no_relation sentences undersampled to 30 %",
                            "--backbone runs/e5-re-0.3"),
                           ("cw05", "class weights (n_most / n_c) ** 0.5", "--set class_weight=0.5")]:
    rows.append((label, f"runs/re-abl-{name}/history.jsonl", flags))
out = ["| variant (one change from the first row) | flags | micro-F1 | AUPRC | accuracy |", "| --- | --- | --- | --- | --- |"]
for label, f, flags in rows:
    p = pathlib.Path(f)
    if not p.exists() or not p.read_text().strip():
        continue
    r = next(json.loads(x) for x in p.read_text().splitlines() if json.loads(x)["step"] == 203)
    out.append(f"| {label} | `{flags}` | {r['micro_f1']:.2f} | {r['auprc']:.2f} | {r['accuracy']:.2f} |")
print("\n".join(out))
