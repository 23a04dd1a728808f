"""The planning rules, registered in order in :data:`RULES` and :data:`SHOOT_RULES`.

An image rule reads one analysed record, the chart and the plan so far
(:class:`~pipeline.planning.state.PlanState`) and returns the operations it
asks for; it may record a decision on the plan for the rules after it. The
order of :data:`RULES` is the order a retoucher works in and the order of the
operations in the instructions: white balance, exposure, white backdrop, shadows, noise, faces, red eyes, blurred
faces, lens corrections, straightening, crops, then the checks that flag or reject.

A shoot rule sees every record at once, and every image's plan before the
image rules run: it returns operations by record index (appended after that
image's own) and may leave findings about the whole shoot on the plans.

A scene rule (:data:`SCENE_RULES`) runs once every image has been through the
image rules up to :data:`SCENE_RULES_AFTER` (its white balance and exposure
decided, nothing that reads them run yet): it sees every record, plan and the
operations so far, and returns the operations so far of the images it changes
(consistent corrections across a scene), which the rest of the image rules then
build on.

To replace a rule, pass a different tuple to
:func:`~pipeline.planning.plan.plan_shoot`; to add one, write a module here
with one short rule function and list it below (a test checks that every
rule module is listed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from charts.schema import Chart
from pipeline.kernel.records import ImageRecord, Operation
from pipeline.planning.rules.brackets import plan_brackets
from pipeline.planning.rules.checks import (
    check_clipped_highlights,
    check_clipped_shadows,
    check_colour_checker,
    check_face_required,
    check_sharpness,
    check_skin_after_exposure,
    check_sky_after_scene_white,
)
from pipeline.planning.rules.crops import plan_crops
from pipeline.planning.rules.duplicates import check_duplicates
from pipeline.planning.rules.exposure import plan_exposure
from pipeline.planning.rules.faces import plan_faces
from pipeline.planning.rules.lens import plan_lens_corrections
from pipeline.planning.rules.noise import noise_shares, plan_noise
from pipeline.planning.rules.privacy import plan_blur_faces
from pipeline.planning.rules.red_eye import plan_red_eyes
from pipeline.planning.rules.scenes import plan_scene_exposure, plan_scene_white_balance, plan_scenes
from pipeline.planning.rules.shadows import plan_shadow_lift
from pipeline.planning.rules.straighten import plan_straightening
from pipeline.planning.rules.white_balance import plan_white_balance
from pipeline.planning.rules.whiten_backdrop import plan_whiten_backdrop
from pipeline.planning.state import PlanState

ImageRule = Callable[[ImageRecord, Chart, PlanState], list[Operation]]
ShootRule = Callable[[Sequence[ImageRecord], Chart, Mapping[int, PlanState]], dict[int, list[Operation]]]
SceneRule = Callable[[Sequence[ImageRecord], Chart, Mapping[int, PlanState], Mapping[int, Sequence[Operation]]],
                     dict[int, list[Operation]]]

#: One image's rules, in the order they run.
RULES: tuple[ImageRule, ...] = (
    plan_white_balance,
    plan_exposure,  # sets plan.exposure_ev
    plan_whiten_backdrop,  # after the scene rules' white balance and exposure
    plan_shadow_lift,  # a backlit frame's shadows, after its exposure
    plan_noise,  # the grain, read by the renderer at each picture's size
    plan_faces,  # judges faces after plan.exposure_ev
    plan_red_eyes,  # a flash's red pupils taken back to dark
    plan_blur_faces,  # the faces the chart delivers blurred
    plan_lens_corrections,  # the lens's distortion and vignetting, before the straightening
    plan_straightening,  # sets plan.angle_deg
    plan_crops,  # turns with plan.angle_deg
    check_sharpness,  # judges sharpness after plan.exposure_ev
    check_skin_after_exposure,  # judges skin after plan.white_balance_gains and plan.exposure_ev
    check_sky_after_scene_white,  # judges a blue sky under a scene's matched white
    check_clipped_highlights,
    check_clipped_shadows,
    check_face_required,
    check_colour_checker,
)

#: Rules over the whole shoot, in the order they run (before the image rules).
SHOOT_RULES: tuple[ShootRule, ...] = (
    plan_brackets,  # sets plan.bracket
    check_duplicates,  # leaves a merged bracket's frames alone
    plan_scenes,  # sets record.plan.scene_id
    noise_shares,  # sets plan.noise_shares
)

#: Rules over the scenes of the shoot, in the order they run (after SCENE_RULES_AFTER).
SCENE_RULES: tuple[SceneRule, ...] = (
    plan_scene_white_balance,
    plan_scene_exposure,  # sets plan.exposure_ev
)

#: The image rule after which the scene rules run: white balance and exposure are decided, the
#: faces and the sharpness check (which judge the image after the exposure) have not run.
SCENE_RULES_AFTER: ImageRule = plan_exposure
