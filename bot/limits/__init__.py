"""Cost and abuse limits: access lists, rate limits, the model cap, token budgets."""
