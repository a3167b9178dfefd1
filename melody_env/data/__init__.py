"""The melody corpus (music21's folk collections), its splits, n-gram baselines and pretraining."""
