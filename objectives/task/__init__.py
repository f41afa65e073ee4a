"""The data half: bands, array geometry, sources of clips, features, datasets, baselines."""
