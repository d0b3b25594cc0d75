"""The Tank Registry REST API: a server over any :class:`tank.registry.Registry`
(``make_registry_app``, served by ``tank-registry``) and the ``http`` registry kind that
tank-api uses to reach it (:class:`HttpRegistry`)."""
