"""Charts: schema, stacking, migration, bad-input errors, safe naming, CLI."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path, PurePosixPath

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from charts.loader import BUNDLED_DIR, ResolvedChart, list_charts, load_chart
from charts.naming import NamingTemplateError, check_template, output_path, render_name, sanitize_token
from charts.schema import (
    CHART_SCHEMA_VERSION,
    JSON_SCHEMA_PATH,
    AcceptanceAction,
    Chart,
    ColorSpace,
    CropPlacement,
    ImageFormat,
    WhiteBalancePolicy,
    chart_json_schema,
    chart_json_schema_text,
    migrate,
    migrate_v1_to_v2,
)
from pipeline.cli.charts import charts as charts_cli
from pipeline.kernel.errors import ConfigError

BUNDLED = [
    "base",
    "real_estate_interiors",
    "culinary",
    "corporate_portrait",
    "social_media",
    "ecommerce",
    "print",
    "client_acme_realty",
    "client_bistro_lumiere",
]


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def error_of(path_or_name, search_dirs=None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_chart(path_or_name, search_dirs=search_dirs)
    return info.value


# A small local base so the tests do not depend on the bundled values.
BASE = """
schema_version: 2
description: test base
crops:
  - {aspect: "4:5", placement: face_aware}
  - {aspect: "1:1", placement: center}
renditions:
  web:
    long_edge_px: 2048
    format: jpeg
    quality: 85
  square:
    crop: "1:1"
    width_px: 1080
    height_px: 1080
metadata:
  keywords: [a, b]
"""


@pytest.fixture
def base_dir(tmp_path: Path) -> Path:
    write(tmp_path, "tbase.yaml", BASE)
    return tmp_path


# --- bundled charts --------------------------------------------------------------


def test_bundled_charts_are_all_listed():
    assert [e.name for e in list_charts([BUNDLED_DIR])] == sorted(BUNDLED)


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_chart_loads_and_round_trips(name: str, tmp_path: Path):
    resolved = load_chart(name, search_dirs=[BUNDLED_DIR])
    assert isinstance(resolved, ResolvedChart)
    assert resolved.name == name
    assert resolved.chain[0].name == "base.yaml" and resolved.chain[-1].name == f"{name}.yaml"
    assert resolved.chart.extends is None
    # `show` output is a standalone chart that validates and loads back identical.
    out = tmp_path / "shown.yaml"
    out.write_text(resolved.to_yaml(), encoding="utf-8")
    again = load_chart(out, search_dirs=[])
    assert again.chart == resolved.chart
    assert again.chain == (out,)
    # And the resolved chart satisfies the published JSON Schema.
    jsonschema.validate(yaml.safe_load(out.read_text()), chart_json_schema())


def test_bundled_charts_reflect_their_specialty():
    re_ = load_chart("real_estate_interiors", [BUNDLED_DIR]).chart
    assert re_.straighten.verticals is True
    assert {c.aspect for c in re_.crops} == {"3:2", "16:9"}
    assert re_.renditions["web"].long_edge_px == 2048 and re_.renditions["print"].long_edge_px == 3000

    hs = load_chart("corporate_portrait", [BUNDLED_DIR]).chart
    assert [(c.aspect, c.placement) for c in hs.crops] == [("4:5", CropPlacement.FACE_AWARE), ("1:1", CropPlacement.FACE_AWARE)]
    assert hs.faces.brighten and hs.acceptance.face_required.action == AcceptanceAction.REJECT

    social = load_chart("social_media", [BUNDLED_DIR]).chart
    assert "web" not in social.renditions  # removed with `web: null`
    assert {r.box for r in social.renditions.values()} == {(1080, 1350), (1080, 1080), (1080, 1920)}
    assert all(r.max_file_kb and r.format in (ImageFormat.JPEG, ImageFormat.WEBP) for r in social.renditions.values())

    pr = load_chart("print", [BUNDLED_DIR]).chart.renditions["master"]
    assert (pr.format, pr.bit_depth, pr.color_space, pr.box, pr.long_edge_px) == (
        ImageFormat.TIFF, 16, ColorSpace.ADOBE_RGB, None, None)

    bistro = load_chart("client_bistro_lumiere", [BUNDLED_DIR]).chart
    assert bistro.white_balance.policy == WhiteBalancePolicy.WARM  # from culinary
    assert bistro.white_balance.warm_shift_mired == 18  # client override
    assert bistro.metadata_for("web").strip_gps is False


def test_bundled_yaml_files_have_a_comment_header():
    for name in BUNDLED:
        assert (BUNDLED_DIR / f"{name}.yaml").read_text().startswith("# "), name


# --- stacking --------------------------------------------------------------------


def test_child_overrides_scalars_replaces_lists_and_merges_mappings(base_dir: Path):
    child = write(base_dir, "child.yaml", """
        schema_version: 2
        extends: tbase
        client: Test Client
        crops:
          - {aspect: "1:1", placement: saliency}
        renditions:
          web:
            quality: 70
          square: null
        metadata:
          keywords: [c]
        naming: "{client}/{stem}_{rendition}.{ext}"
    """)
    resolved = load_chart(child, search_dirs=[])
    chart = resolved.chart
    assert [p.name for p in resolved.chain] == ["tbase.yaml", "child.yaml"]
    assert chart.client == "Test Client"
    # The list replaced the parent's list entirely.
    assert [(c.aspect, c.placement) for c in chart.crops] == [("1:1", CropPlacement.SALIENCY)]
    assert chart.metadata.keywords == ["c"]
    # A mapping merges: one field changed, the others inherited.
    web = chart.renditions["web"]
    assert (web.quality, web.long_edge_px, web.format) == (70, 2048, ImageFormat.JPEG)
    # null removes an inherited key.
    assert list(chart.renditions) == ["web"]
    assert render_name(chart.naming, client=chart.client, stem="IMG_1", rendition="web", ext="jpg") == (
        "Test_Client/IMG_1_web.jpg")


def test_extends_by_relative_path_and_local_shadowing(tmp_path: Path):
    (tmp_path / "specialties").mkdir()
    write(tmp_path / "specialties", "food.yaml", """
        schema_version: 2
        extends: culinary
        exposure: {target_ev: 0.5}
    """)
    # A local chart named like a bundled one extends the bundled one, not itself.
    write(tmp_path, "culinary.yaml", """
        schema_version: 2
        extends: culinary
        exposure: {tolerance_ev: 0.1}
    """)
    client = write(tmp_path, "client.yaml", """
        schema_version: 2
        extends: specialties/food.yaml
    """)
    resolved = load_chart(client, search_dirs=[BUNDLED_DIR])
    assert [str(p.relative_to(p.parents[1])) for p in resolved.chain] == [
        "charts/base.yaml", "charts/culinary.yaml", "specialties/food.yaml", f"{tmp_path.name}/client.yaml"]
    assert resolved.chart.exposure.target_ev == 0.5
    local = load_chart(tmp_path / "culinary.yaml", search_dirs=[BUNDLED_DIR])
    assert local.chain[0].name == "base.yaml" and local.chain[1].parent == BUNDLED_DIR
    assert local.chart.exposure.tolerance_ev == 0.1 and local.chart.white_balance.policy == "warm"


# --- migration -------------------------------------------------------------------


V1 = """
schema_version: 1
white_balance: warm
crops: ["4:5", "16:9"]
naming: "{shoot}/{name}.{ext}"
"""


def test_migrate_v1_to_v2_keeps_v1_meaning():
    v1 = yaml.safe_load(V1)
    v2 = migrate_v1_to_v2(v1)
    assert v1["white_balance"] == "warm"  # input untouched
    assert v2["schema_version"] == 2
    assert v2["white_balance"] == {"policy": "warm"}
    # v2 defaults to face_aware, but v1 crops were centred: the migration says so.
    assert v2["crops"] == [{"aspect": "4:5", "placement": "center", "orientation": "fixed"},
                           {"aspect": "16:9", "placement": "center", "orientation": "fixed"}]
    assert v2["naming"] == "{shoot}/{stem}.{ext}"
    chart = Chart.model_validate(migrate(v1))
    assert chart.crops[0].placement == CropPlacement.CENTER


def test_v1_parent_under_v2_child(tmp_path: Path):
    write(tmp_path, "old.yaml", V1)
    child = write(tmp_path, "new.yaml", """
        schema_version: 2
        extends: old
        white_balance: {warm_shift_mired: 12}
    """)
    chart = load_chart(child, search_dirs=[]).chart
    assert chart.schema_version == CHART_SCHEMA_VERSION
    assert (chart.white_balance.policy, chart.white_balance.warm_shift_mired) == ("warm", 12)
    assert [c.placement for c in chart.crops] == [CropPlacement.CENTER, CropPlacement.CENTER]
    assert chart.naming == "{shoot}/{stem}.{ext}"


def test_v1_error_still_points_at_its_line(tmp_path: Path):
    path = write(tmp_path, "old.yaml", """
        schema_version: 1
        crops: ["4:5"]
        white_balance: purple
    """)
    err = error_of(path, [])
    assert (err.location.file, err.location.line, err.location.key) == (path, 3, "white_balance.policy")
    assert "neutral" in err.message


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("description: x\n", 1, "missing schema_version"),
        ("schema_version: 3\n", 1, "newer than this postprod"),
        ("schema_version: 0\n", 1, "not a chart version"),
        ("description: x\nschema_version: two\n", 2, "must be an integer"),
    ],
)
def test_bad_schema_version(tmp_path: Path, text: str, line: int, message: str):
    path = write(tmp_path, "c.yaml", text)
    err = error_of(path, [])
    assert (err.location.file, err.location.line, err.location.key) == (path, line, "schema_version")
    assert message in err.message


# --- bad input: every error names file, line and key ------------------------------


def test_unknown_key_names_file_line_key_and_suggests(base_dir: Path):
    path = write(base_dir, "c.yaml", """
        schema_version: 2
        extends: tbase
        exposure:
          target_ev: 0.3
          tolerence_ev: 0.2
    """)
    err = error_of(path, [])
    assert (err.location.file, err.location.line, err.location.key) == (path, 5, "exposure.tolerence_ev")
    assert "unknown key" in err.message and "tolerance_ev" in err.message


def test_unknown_key_in_a_rendition(base_dir: Path):
    path = write(base_dir, "c.yaml", """
        schema_version: 2
        extends: tbase
        renditions:
          web:
            qualty: 80
    """)
    err = error_of(path, [])
    assert (err.location.file, err.location.line, err.location.key) == (path, 5, "renditions.web.qualty")
    assert "did you mean 'quality'" in err.message


def test_unknown_key_nothing_like_a_known_one_lists_the_keys(base_dir: Path):
    # box: [1080, 1920] for an exact size: no key is close, so the row lists those the rendition takes.
    path = write(base_dir, "c.yaml", """
        schema_version: 2
        extends: tbase
        renditions:
          web:
            box: [1080, 1920]
    """)
    err = error_of(path, [])
    assert err.location.key == "renditions.web.box"
    assert ("unknown key (the keys here: long_edge_px, short_edge_px, megapixels, width_px, height_px, crop"
            in err.message)


def test_out_of_range_value_in_child(base_dir: Path):
    path = write(base_dir, "c.yaml", """
        schema_version: 2
        extends: tbase
        renditions:
          web:
            quality: 101
    """)
    err = error_of(path, [])
    assert (err.location.file, err.location.line, err.location.key) == (path, 5, "renditions.web.quality")
    assert "100" in err.message


def test_out_of_range_value_inherited_points_at_the_parent(tmp_path: Path):
    parent = write(tmp_path, "parent.yaml", """
        schema_version: 2
        faces:
          min_face_pct: 150
    """)
    child = write(tmp_path, "child.yaml", """
        schema_version: 2
        extends: parent
        exposure: {target_ev: 0.3}
    """)
    err = error_of(child, [])
    assert (err.location.file, err.location.line, err.location.key) == (parent, 3, "faces.min_face_pct")


def test_rule_broken_by_the_merge_points_where_the_key_was_written(base_dir: Path):
    # The child replaces the crop list; the parent's `square` rendition still
    # asks for the 1:1 crop. The key to look at is in the parent.
    child = write(base_dir, "c.yaml", """
        schema_version: 2
        extends: tbase
        crops:
          - {aspect: "4:5"}
    """)
    err = error_of(child, [])
    assert (err.location.file, err.location.line, err.location.key) == (
        base_dir / "tbase.yaml", 12, "renditions.square.crop")
    assert "not one of the chart's crops" in err.message


def test_yaml_syntax_error_names_file_and_line(base_dir: Path):
    path = write(base_dir, "c.yaml", """
        schema_version: 2
        extends: tbase
        exposure:
          target_ev: [0.3
        faces: {}
    """)
    err = error_of(path, [])
    assert err.location.file == path and err.location.line in (4, 5)
    assert "YAML syntax error" in err.message


def test_syntax_error_in_a_parent_names_the_parent(tmp_path: Path):
    parent = write(tmp_path, "parent.yaml", "schema_version: 2\nexposure:\n  target_ev: 0.3\n    tolerance_ev: 1\n")
    child = write(tmp_path, "child.yaml", "schema_version: 2\nextends: parent\n")
    err = error_of(child, [])
    assert err.location.file == parent and err.location.line == 4


def test_duplicate_key(base_dir: Path):
    path = write(base_dir, "c.yaml", "schema_version: 2\nclient: a\nclient: b\n")
    err = error_of(path, [])
    assert err.location.file == path and err.location.line == 3 and "duplicate key" in err.message


def test_missing_parent(tmp_path: Path):
    path = write(tmp_path, "c.yaml", """
        schema_version: 2
        description: x
        extends: no_such_chart
    """)
    err = error_of(path, [tmp_path])
    assert (err.location.file, err.location.line, err.location.key) == (path, 3, "extends")
    assert "'no_such_chart' not found" in err.message


def test_missing_parent_by_path(tmp_path: Path):
    path = write(tmp_path, "c.yaml", "schema_version: 2\nextends: ../nowhere/base.yaml\n")
    err = error_of(path, [])
    assert (err.location.file, err.location.line, err.location.key) == (path, 2, "extends")


def test_inheritance_cycle_is_named(tmp_path: Path):
    a = write(tmp_path, "a.yaml", "schema_version: 2\nextends: b\n")
    write(tmp_path, "b.yaml", "schema_version: 2\ndescription: b\nextends: c.yaml\n")
    c = write(tmp_path, "c.yaml", "schema_version: 2\n\n\nextends: a\n")
    err = error_of(a, [])
    assert "inheritance cycle" in err.message
    assert err.message.endswith("a.yaml -> " + str(tmp_path / "b.yaml") + " -> " + str(tmp_path / "c.yaml")
                                + " -> " + str(tmp_path / "a.yaml"))
    assert (err.location.file, err.location.line, err.location.key) == (c, 4, "extends")


def test_missing_chart_name():
    err = error_of("no_such_chart", [BUNDLED_DIR])
    assert "not found" in err.message


@pytest.mark.parametrize(
    "template, message",
    [
        ("../{stem}.{ext}", "'..'"),
        ("/srv/{stem}.{ext}", "relative path"),
        ("{shoot}\\\\{stem}.{ext}", "backslash"),
        ("{shoot}/{camera}/{stem}.{ext}", "unknown token {camera}"),
        ("{stem}.jpg", "end with '.{ext}'"),
    ],
)
def test_bad_naming_template(base_dir: Path, template: str, message: str):
    path = write(base_dir, "c.yaml", f"""
        schema_version: 2
        extends: tbase
        naming: "{template}"
    """)
    err = error_of(path, [])
    assert (err.location.file, err.location.line, err.location.key) == (path, 3, "naming")
    assert message in err.message


def test_unquoted_naming_template_gets_a_hint(base_dir: Path):
    path = write(base_dir, "c.yaml", "schema_version: 2\nextends: tbase\nnaming: {stem}\n")
    err = error_of(path, [])
    assert err.location.key == "naming" and "quote the template" in err.message


def test_naming_written_as_a_section_is_told_it_is_one_string(base_dir: Path):
    # naming: {template: "..."}, as the other sections are written: told what naming is, not to quote it.
    path = write(base_dir, "c.yaml", 'schema_version: 2\nextends: tbase\nnaming:\n  template: "{stem}.{ext}"\n')
    err = error_of(path, [])
    assert err.location.key == "naming" and "quote the template" not in err.message
    assert "naming is the template itself, one quoted string" in err.message and "(template)" in err.message


def test_naming_needs_rendition_when_extensions_collide(base_dir: Path):
    path = write(base_dir, "c.yaml", "schema_version: 2\nextends: tbase\nnaming: \"{shoot}/{stem}.{ext}\"\n")
    err = error_of(path, [])
    assert (err.location.file, err.location.line, err.location.key) == (path, 3, "naming")
    assert "{rendition}" in err.message


def test_every_mistake_of_a_chart_is_told_in_the_order_of_its_lines(base_dir: Path):
    # A chart is mended in one go: every error with its line and key, the earliest first, and what was written.
    path = write(base_dir, "c.yaml", """
        schema_version: 2
        extends: tbase
        name: acme
        acceptance:
          sharpness: 5
        renditions:
          - web
        exposure:
          tolerance_ev: -3
          target_ev: high
          lift_backlit_shadows: maybe
    """)
    err = error_of(path, [])
    assert (err.location.line, err.location.key) == (3, "name")
    assert err.message.startswith("unknown key (did you mean 'naming'?); also line 5, key 'acceptance.sharpness': "
                                  "expected a section of keys (min_laplacian_var, action), got the number 5; also "
                                  "line 6, key 'renditions': expected a section (one 'name: value' per line), got a "
                                  "list ['web']; also line 9, key 'exposure.tolerance_ev': ")
    assert err.message.endswith("got the text 'high' (and 1 more)")  # five told, the sixth counted
    assert "line 11" not in err.message


def test_unquoted_aspect_is_explained(base_dir: Path):
    # YAML 1.1 reads 4:5 as the base-60 number 245; the message gives the digits back in the quotes they need.
    path = write(base_dir, "c.yaml", """
        schema_version: 2
        extends: tbase
        crops:
          - aspect: 4:5
    """)
    err = error_of(path, [])
    assert (err.location.file, err.location.line, err.location.key) == (path, 4, "crops.0.aspect")
    first = err.message.split("; also")[0]  # (the crops written replace tbase's: its square rendition's 1:1 goes too)
    assert "the aspect 4:5 as the number 245" in first and first.endswith("quote it: '4:5'")
    # A rendition's crop of 16:9 (969), not told to write 4:5.
    path = write(base_dir, "d.yaml", """
        schema_version: 2
        extends: tbase
        renditions:
          web: {long_edge_px: 2048, crop: 16:9}
    """)
    err = error_of(path, [])
    assert err.location.key == "renditions.web.crop"
    assert "the crop 16:9 as the number 969" in err.message and "quote it: '16:9'" in err.message


@pytest.mark.parametrize(
    "rendition, key, message",
    [
        ("{format: jpeg, bit_depth: 16}", "bit_depth", "8-bit only"),
        ("{format: tiff, max_file_kb: 500}", "max_file_kb", "lossy"),
        ("{crop: \"4:5\", width_px: 1080, height_px: 1080}", "crop", "stretched"),
        ("{width_px: 1080, height_px: 1350}", "crop", "needs `crop:`"),
        ("{width_px: 1080}", "height_px", "both"),
        ("{long_edge_px: 2048, width_px: 1080, height_px: 1350, crop: \"4:5\"}", "long_edge_px",
         "give one size, not long_edge_px and width_px/height_px"),
        ("{short_edge_px: 1080, megapixels: 12}", "short_edge_px", "not short_edge_px and megapixels"),
        ("{megapixels: 0}", "megapixels", "greater than or equal to 0.01"),
        ("{short_edge_px: 20000, format: webp}", "short_edge_px", "16383"),
        ("{format: gif}", "format", "jpeg"),
        ("{color_space: prophoto}", "color_space", "srgb"),
        ("{long_edge_px: 8}", "long_edge_px", "16"),
    ],
)
def test_bad_rendition(base_dir: Path, rendition: str, key: str, message: str):
    path = write(base_dir, "c.yaml", f"""
        schema_version: 2
        extends: tbase
        renditions:
          extra: {rendition}
    """)
    err = error_of(path, [])
    assert (err.location.file, err.location.line, err.location.key) == (path, 4, f"renditions.extra.{key}")
    assert message in err.message


TURNED_CROP = """
schema_version: 2
extends: tbase
crops:
  - {aspect: "4:5", orientation: source}
  - {aspect: "1:1", placement: center}
renditions:
  extra: %s
"""


def test_an_exact_box_turns_with_a_crop_turned_to_the_pictures_orientation(base_dir: Path):
    # A 4:5 crop turned to a landscape picture is 5:4: an 8x10 print's 2400x3000 box is 3000x2400 there.
    path = write(base_dir, "c.yaml", TURNED_CROP % '{crop: "4:5", width_px: 2400, height_px: 3000}')
    chart = load_chart(path, search_dirs=[base_dir]).chart
    assert chart.crop("4:5").orientation == "source"
    extra = chart.renditions["extra"]
    assert extra.box_for(3000, 2400) == (3000, 2400) and extra.box_for(2000, 2500) == (2400, 3000)
    assert extra.box_for(2000, 2000) == (2400, 3000)  # a square frame turns nothing


def test_bad_rendition_name(base_dir: Path):
    path = write(base_dir, "c.yaml", "schema_version: 2\nextends: tbase\nrenditions:\n  Web Large: {}\n")
    err = error_of(path, [])
    assert (err.location.line, err.location.key) == (4, "renditions.Web Large")


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just a string\n"])
def test_chart_that_is_not_a_mapping(tmp_path: Path, text: str):
    path = write(tmp_path, "c.yaml", text)
    err = error_of(path, [])
    assert err.location.file == path


# --- naming: nothing escapes the output folder --------------------------------------

HOSTILE = [
    "../../etc/passwd",
    "..",
    ".",
    "...",
    "/etc/passwd",
    "~root/.ssh/id_rsa",
    "C:\\Windows\\System32\\x",
    "..\\..\\boot.ini",
    "a\x00b",
    "line\nbreak",
    "CON",
    "nul.txt",
    "",
    " ",
    "a/../../b",
    "%2e%2e%2f",
    "\u202e\u2024\u2024/\u2024\u2024/x",  # RTL override and one-dot leaders
    "Lumière/../../x",
    "x" * 1000,
]
TEMPLATE = "{client}/{shoot}/{date}/{rendition}/{seq:04d}_{stem}.{ext}"


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_token_values_stay_inside(tmp_path: Path, value: str):
    out = tmp_path / "out"
    out.mkdir()
    tokens = dict(client=value, shoot=value, date=value, rendition=value, stem=value, ext=value, seq=7)
    name = render_name(TEMPLATE, **tokens)
    parts = PurePosixPath(name).parts
    assert len(parts) == 5  # the template's five folders/files, no more
    assert not PurePosixPath(name).is_absolute()
    assert all(p not in ("", ".", "..") and "\\" not in p and "\x00" not in p for p in parts)
    assert all(not p.startswith(".") for p in parts)
    assert parts[-1].startswith("0007_")
    path = output_path(out, TEMPLATE, **tokens)
    assert path.is_relative_to(out.resolve())
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x")  # it is a writable name on this filesystem
    assert path.exists()


def test_output_path_refuses_a_symlink_out_of_the_folder(tmp_path: Path):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "shoot1").symlink_to(elsewhere)
    with pytest.raises(NamingTemplateError, match="outside the output folder"):
        output_path(out, "{shoot}/{stem}.{ext}", shoot="shoot1", stem="a", ext="jpg")


def test_sanitize_token_examples():
    assert sanitize_token("../../etc/passwd") == "_.._etc_passwd"
    assert sanitize_token("Bistro Lumière") == "Bistro_Lumiere"
    assert sanitize_token("IMG_0001") == "IMG_0001"
    assert sanitize_token("..") == "_"
    assert render_name("{stem}.{ext}", stem="CON", ext="jpg") == "_CON.jpg"
    assert render_name("{seq:03d}.{ext}", seq=7, ext="jpg") == "007.jpg"


@pytest.mark.parametrize(
    "template",
    [
        "",
        "/abs/{stem}.{ext}",
        "../{stem}.{ext}",
        "a/../{stem}.{ext}",
        "a/./{stem}.{ext}",
        "a//{stem}.{ext}",
        "~/{stem}.{ext}",
        "C:{stem}.{ext}",
        "{shoot}\\{stem}.{ext}",
        "{stem}\x00.{ext}",
        "{stem}\n.{ext}",
        "{unknown}.{ext}",
        "{stem.__class__}.{ext}",
        "{stem[0]}.{ext}",
        "{stem!r}.{ext}",
        "{stem:>300}.{ext}",
        "{seq:x<9}.{ext}",
        "{}.{ext}",
        "{0}.{ext}",
        "{stem",
        "{stem}}.{ext}",
        "{stem}",
        "{stem}.{ext}/",
    ],
)
def test_hostile_templates_are_rejected(template: str):
    with pytest.raises(NamingTemplateError):
        check_template(template)
    with pytest.raises(NamingTemplateError):
        render_name(template, client="c", shoot="s", date="d", seq=1, stem="x", rendition="r", ext="jpg")


def test_render_name_needs_every_token_it_uses():
    with pytest.raises(NamingTemplateError, match="client"):
        render_name("{client}/{stem}.{ext}", stem="a", ext="jpg")
    with pytest.raises(NamingTemplateError, match="integer"):
        render_name("{seq}.{ext}", seq="../1", ext="jpg")


def test_client_token_needs_a_client(base_dir: Path):
    path = write(base_dir, "c.yaml", 'schema_version: 2\nextends: tbase\nnaming: "{client}/{rendition}/{stem}.{ext}"\n')
    err = error_of(path, [])
    assert err.location.key == "naming" and "client" in err.message


# --- JSON Schema --------------------------------------------------------------------


def test_committed_json_schema_is_current():
    # Regenerate with `postprod charts schema --write`.
    assert JSON_SCHEMA_PATH.read_text(encoding="utf-8") == chart_json_schema_text()


def test_json_schema_carries_bounds_and_descriptions():
    schema = chart_json_schema()
    quality = schema["$defs"]["Rendition"]["properties"]["quality"]
    assert (quality["minimum"], quality["maximum"]) == (1, 100) and quality["description"]
    assert schema["additionalProperties"] is False
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"schema_version": 2, "exposure": {"target_ev": 9}}, schema)


def test_every_number_has_bounds_and_a_description():
    from pydantic import BaseModel

    seen: set[type] = set()

    def walk(model: type[BaseModel]) -> None:
        if model in seen:
            return
        seen.add(model)
        for name, field in model.model_fields.items():
            ann = field.annotation
            base = [a for a in getattr(ann, "__args__", (ann,)) if a is not type(None)][0]
            if base in (int, float):
                bounds = {type(m).__name__ for m in field.metadata}
                assert {"Ge", "Le"} <= bounds, f"{model.__name__}.{name} lacks ge/le"
                assert field.description, f"{model.__name__}.{name} lacks a description"
            for sub in getattr(ann, "__args__", (ann,)):
                if isinstance(sub, type) and issubclass(sub, BaseModel):
                    walk(sub)
                for inner in getattr(sub, "__args__", ()):
                    if isinstance(inner, type) and issubclass(inner, BaseModel):
                        walk(inner)

    walk(Chart)
    assert len(seen) >= 10


def test_models_are_strict_and_frozen():
    chart = Chart(schema_version=2)
    with pytest.raises(Exception):
        chart.client = "x"  # type: ignore[misc]
    with pytest.raises(Exception):
        Chart(schema_version=2, colour="red")


# --- CLI --------------------------------------------------------------------------


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_cli_list(runner: CliRunner):
    result = runner.invoke(charts_cli, ["list", "--search-dir", str(BUNDLED_DIR)])
    assert result.exit_code == 0, result.output
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert names == sorted(BUNDLED)
    assert "[extends real_estate_interiors]" in result.stdout


@pytest.mark.parametrize("name", BUNDLED)
def test_cli_show_output_is_accepted_by_validate(runner: CliRunner, tmp_path: Path, name: str):
    shown = runner.invoke(charts_cli, ["show", name, "--search-dir", str(BUNDLED_DIR)])
    assert shown.exit_code == 0, shown.output
    path = tmp_path / f"{name}_resolved.yaml"
    path.write_text(shown.stdout, encoding="utf-8")
    checked = runner.invoke(charts_cli, ["validate", str(path)])
    assert checked.exit_code == 0, checked.output
    assert checked.stdout.startswith(f"ok: {path}")
    assert load_chart(path, []).chart == load_chart(name, [BUNDLED_DIR]).chart


def test_cli_show_unknown_chart_exits_2(runner: CliRunner):
    result = runner.invoke(charts_cli, ["show", "no_such_chart", "--search-dir", str(BUNDLED_DIR)])
    assert result.exit_code == 2
    assert "not found" in result.stderr and result.stdout == ""


def test_cli_validate_bad_chart_one_line(runner: CliRunner, base_dir: Path):
    path = write(base_dir, "c.yaml", """
        schema_version: 2
        extends: tbase
        renditions:
          web: {quality: 0}
    """)
    result = runner.invoke(charts_cli, ["validate", str(path)])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"{path}:4: renditions.web.quality: ")


def test_cli_validate_reports_every_bad_file(runner: CliRunner, base_dir: Path):
    good = write(base_dir, "good.yaml", "schema_version: 2\nextends: tbase\n")
    bad1 = write(base_dir, "bad1.yaml", "schema_version: 2\nextends: tbase\nclinet: x\n")
    bad2 = write(base_dir, "bad2.yaml", "schema_version: 2\nextends: missing\n")
    result = runner.invoke(charts_cli, ["validate", str(bad1), str(good), str(bad2), "--search-dir", str(base_dir)])
    assert result.exit_code == 2
    assert result.stdout.startswith(f"ok: {good}")
    assert result.stderr.splitlines() == [
        f"{bad1}:3: clinet: unknown key (did you mean 'client'?)",
        f"{bad2}:2: extends: parent chart 'missing' not found (searched {base_dir}; see `postprod charts list`)",
    ]


def test_cli_schema_prints_the_committed_schema(runner: CliRunner):
    result = runner.invoke(charts_cli, ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == json.loads(JSON_SCHEMA_PATH.read_text())


def test_cli_every_command_has_help(runner: CliRunner):
    assert charts_cli.help
    for name, command in charts_cli.commands.items():
        assert command.help, name
        result = runner.invoke(charts_cli, [name, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output
