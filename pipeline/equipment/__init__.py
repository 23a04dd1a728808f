"""Equipment and operator findings: which body shows dust, hot photosites or
focus misses, and who shot what.

The per-frame detectors live in the imaging core (:mod:`pipeline.imaging.dust`,
:mod:`pipeline.imaging.sensor_defects`, :mod:`pipeline.imaging.focus_miss`,
:mod:`pipeline.imaging.identity`); the inspect_equipment stage writes what they
find per frame to small files (:mod:`pipeline.equipment.evidence`). This
package turns those into per-body findings (:mod:`pipeline.equipment.findings`,
:mod:`pipeline.equipment.analysis`), maps bodies to photographers
(:mod:`pipeline.equipment.photographers`) and puts many shoots together
(:mod:`pipeline.equipment.history`). No pixels here: it runs in the driver,
after the workers are done, on records and evidence files.
"""
