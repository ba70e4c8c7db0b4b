"""Distillation: a student learns from a teacher (`cookbook train distill`).

- On-policy (`advantages`, `teachers`, `prompts`, `align`, `scoring`): the
  student samples completions through the RL sampler; the teacher scores the
  student's exact tokens and the per-token reverse KL becomes the advantage.
- Off-policy (`topk`): on fixed supervised data, the teacher's top-K
  next-token distribution at every trained position is the soft target.

The recipe (config and loops) is `cookbook_cli.recipes.distill`.
"""
