// placeholder until the CUDA addon lands
