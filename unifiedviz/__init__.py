"""unifiedviz: see what any unit of a CNN or ViT responds to, attack it, measure superposition."""
