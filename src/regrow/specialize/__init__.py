"""Specialization and drift: LoRA fine-tuning on a codebase (`regrow finetune`) and `regrow drift`."""
