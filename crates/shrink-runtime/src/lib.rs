//! Deployment runtime for compressed models: planned (sparse / int8 / int4 kernels and the compressed file format).
