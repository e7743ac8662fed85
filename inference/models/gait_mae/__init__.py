"""GaitMAE: a dual-stream spatio-temporal transformer masked autoencoder over canonical-skeleton
clips, and the embedding of a walk it gives (card: gait_mae.md)."""
