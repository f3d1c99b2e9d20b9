"""Training: the LightningModule and its loss, LR schedules, callbacks (history, pose images, guards, exact
resume), loggers and the multi-process launch helpers that ``centerpose.train`` puts together."""
