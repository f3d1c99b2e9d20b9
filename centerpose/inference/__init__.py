"""Inference: the predictor (pre-processing, network or ONNX runtime, decoding through the codec, multi-scale
merge), NMS, tracking across frames, drawing, and the export graph."""
