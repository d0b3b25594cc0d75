"""The scrubber: delayed delete (Glance's), and the periodic cleanup pass.

With ``[scrubber] delayed_delete`` a DELETE marks an image ``pending_delete`` and keeps
its data (:meth:`tank.service.ImageService.delete`); ``tank-manage restore`` brings it
back (:mod:`.restore`). A scrub pass (:mod:`.scrub_pass`: ``tank-manage scrub``, its
``--daemon``, or tank-api with ``in_api``) removes the data once ``scrub_time`` has
passed (:mod:`.delayed`) and ends expired upload leases.
"""
