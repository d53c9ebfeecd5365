"""Training every model: per model, what it learns from and how (tokenizer, generator,
in-betweener, evaluator, length estimator), their checkpoints and loss curves."""
