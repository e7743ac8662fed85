"""The synthetic walker: a parametric kinematic gait model with exact ground truth.

``walker`` (gait model), ``person`` (bouts, standing, freezing), ``patterns`` (pathological
styles), ``sensors`` (device noise and layouts), ``truth`` (ground truth), ``scenes`` (who walks
where), ``source`` (the live ``sim`` capture source) and ``dataset`` (``gaitstream simulate``).
"""
