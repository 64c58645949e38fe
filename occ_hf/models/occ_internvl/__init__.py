"""OccInternVL: transformers' InternVL with the 3D prompt and the staged chain of thought."""
