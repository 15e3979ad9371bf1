"""Sequential scaling: hundreds of edits to one model; forgetting, editability and collapse as edits accumulate."""
