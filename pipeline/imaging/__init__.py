"""The imaging core: decoding, colour, geometry, measurements and corrections.

Pure functions on numpy arrays and typed values. Stages, the review app, the
DNG writer and the benchmarks import it; it imports no stage, no app and no
part of the run kernel but its records and errors.
"""
