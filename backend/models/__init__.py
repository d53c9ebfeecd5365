"""The models: motion tokenizer, the LoRA motion LM, in-betweener, text-to-motion evaluator and
length estimator, the base LLM they read text with, and how their weights are stored."""
