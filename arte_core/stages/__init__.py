"""The loop's stages, one module each, named after the stage; `registry.py` lists them."""
