"""compsec: security of compressed neural networks.

Is the compressed model I deploy as safe as the one I evaluated, and was it built to misbehave only when
compressed?  See the README for the verbs; the library is organised as:

- ``compsec.formats``  quantization formats with exact preimages (boxes), one file per family;
- ``compsec.models``   model I/O, the per-architecture table and the embedded tiny assistant;
- ``compsec.cli``      the ``compsec`` command, thin wrappers over library functions.
"""

__version__ = "0.1.0"
