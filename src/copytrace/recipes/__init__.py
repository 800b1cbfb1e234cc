"""Applications of the quantization library to copytrace's own descriptors: the image and audio
tasks (data, metric, QAT loss from ``copytrace.train``), the stages of ``copytrace quantize``,
the deployed-file checks and speed measurement, and the audio ensemble join.

``copytrace.quant`` is the library these use; nothing below ``recipes`` imports it.
"""
