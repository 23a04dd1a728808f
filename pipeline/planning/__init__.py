"""Planning: a resolved chart and an image's measurements in, retouch operations out. No pixels."""
