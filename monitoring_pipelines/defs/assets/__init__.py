"""The assets of one monitored model, one module per asset (named after it); ``defs.model_assets`` lists them."""
