"""Equipment and operator findings: which body shows dust, hot photosites or
focus misses, and who shot what.

The per-frame detectors live in the imaging core (:mod:`pipeline.imaging.dust`,
:mod:`pipeline.imaging.sensor_defects`, :mod:`pipeline.imaging.focus_miss`,
:mod:`pipeline.imaging.identity`); this package turns their small per-frame
records into per-body findings (:mod:`pipeline.equipment.findings`) and maps
bodies to photographers (:mod:`pipeline.equipment.photographers`). No pixels
here: everything runs in the driver after the workers are done.
"""
