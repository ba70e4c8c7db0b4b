"""Preference learning (DPO): comparisons, paired datasets, the DPO loss.

- `types`: `Comparison` (a prompt and two completions) and `LabeledComparison`
  (plus which one is preferred: "A", "B" or "Tie");
- `data`: reading comparison files and rows, and `PreferenceDataset`, which
  turns comparisons into batches of (chosen, rejected) Datum pairs;
- `builders`: the registered preference dataset builders (`comparisons`,
  `hh_rlhf`, `ultrafeedback`, `helpsteer3`);
- `loss`: the DPO loss as a custom loss for `forward_backward_custom`.
"""
