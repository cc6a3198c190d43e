// placeholder until the wasm backend lands
