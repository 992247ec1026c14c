# The AVX2 build of _kernels.pyx: same source, compiled by setup.py with the
# flags in ISA_VARIANTS; cpool._fast uses it when the CPU supports AVX2.
include "_kernels.pyx"
