"""The repository context engine: what a model is shown about the code around a hidden body.

- `engine`: rank symbols for a target and pack them under a token budget, each with its reason;
- `tokenizers`: the token counts the budget is measured in.
"""
