"""Evaluation: retrieval (recall@k, MRR, sweeps; `retrieval`) and answers (EM/F1, closed-book hits;
`answers`). The metrics themselves are `odqa.metrics`."""
