"""Who shot a frame: --photographer, the body register (YAML or CSV), EXIF Artist."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from pipeline.equipment.photographers import PhotographerSource, load_register, resolve_photographer
from pipeline.imaging.identity import CameraIdentity
from pipeline.kernel.errors import ConfigError

REGISTER = """\
schema_version: 1
assignments:
  - body: "012345678"
    photographer: Ana Lima
  - body: "C3281327008278"
    photographer: Ben Ode
    until: 2026-03-31
  - body: "C3281327008278"
    photographer: Cy Dua
    from: 2026-04-01
  - body: Canon Canon PowerShot G2
    photographer: Dee Ray
"""


@pytest.fixture()
def register(tmp_path):
    path = tmp_path / "bodies.yaml"
    path.write_text(REGISTER)
    return load_register(path)


def test_register_by_serial_and_date(register):
    assert register.photographer_for("012345678", None) == "Ana Lima"
    assert register.photographer_for("C3281327008278", datetime(2026, 3, 31, 23, 59)) == "Ben Ode"
    assert register.photographer_for("C3281327008278", date(2026, 4, 1)) == "Cy Dua"
    assert register.photographer_for("C3281327008278", None) is None  # two holders: the date decides
    assert register.photographer_for("canon  canon powershot g2", None) == "Dee Ray"  # case and spaces
    assert register.photographer_for("999", None) is None


def test_precedence_option_register_artist(register):
    ident = CameraIdentity(camera_make="Acme", camera_model="Z", body_serial="012345678", artist="Old Owner")
    assert resolve_photographer(ident, None, named="  Eve  Ng ", register=register) == ("Eve Ng", PhotographerSource.OPTION)
    assert resolve_photographer(ident, None, register=register) == ("Ana Lima", PhotographerSource.REGISTER)
    assert resolve_photographer(ident, None) == ("Old Owner", PhotographerSource.EXIF_ARTIST)
    assert resolve_photographer(CameraIdentity(), None, register=register) == (None, None)


def test_csv_register(tmp_path):
    path = tmp_path / "bodies.csv"
    path.write_text("body,photographer,from,until\n012345678,Ana Lima,,\nX1,Ben Ode,2026-01-01,2026-06-30\n")
    reg = load_register(path)
    assert reg.photographer_for("012345678", None) == "Ana Lima"
    assert reg.photographer_for("X1", date(2026, 7, 1)) is None
    assert reg.photographer_for("X1", date(2026, 6, 30)) == "Ben Ode"


@pytest.mark.parametrize(
    "text, line, key, words",
    [
        ("assignments:\n  - body: 012345670\n    photographer: Ana\n", 2, "assignments.0.body", "quote it"),
        ("assignments:\n  - body: 'A'\n    photographer: Ana\n    start: 2026-01-01\n", 4, "assignments.0.start", "unknown key"),
        (
            "assignments:\n  - body: 'A'\n    photographer: Ana\n  - body: 'A'\n    photographer: Ben\n",
            4,
            "assignments.1",
            "same days",
        ),
        ("assignments:\n  - body: 'A'\n    photographer: Ana\n    from: 2026-05-01\n    until: 2026-04-01\n", 2, "assignments.0", "before"),
    ],
)
def test_register_errors_name_file_line_and_key(tmp_path, text, line, key, words):
    path = tmp_path / "bodies.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_register(path)
    assert err.value.location.line == line
    assert err.value.location.key == key
    assert words in err.value.message


def test_csv_errors(tmp_path):
    path = tmp_path / "bodies.csv"
    path.write_text("serial,person\nA,Ana\n")
    with pytest.raises(ConfigError, match="header must be body,photographer"):
        load_register(path)
    path.write_text("body,photographer,from\nA,Ana,yesterday\n")
    with pytest.raises(ConfigError) as err:
        load_register(path)
    assert (err.value.location.line, err.value.location.key) == (2, "from")
    with pytest.raises(ConfigError, match="file not found"):
        load_register(tmp_path / "missing.csv")


@pytest.mark.parametrize(("artist", "name"), [
    ("Photographer: Carol M. Highsmith", "Carol M. Highsmith"), ("Photo by Ana Lima", "Ana Lima"),
    ("By: Jo Doe", "Jo Doe"), ("  Ana   Lima ", "Ana Lima"), ("Byron Smith", "Byron Smith"),
    ("NPS / Gavin Emmons", "NPS / Gavin Emmons"), ("Photographer:", "Photographer:"),
    ("Photography Studio Lima", "Photography Studio Lima"),
])
def test_the_artists_label_is_not_part_of_the_name(artist: str, name: str) -> None:
    # A new user's report listed "Photographer: Carol M. Highsmith": one person, written with the label by one
    # camera and without it by another, would count as two photographers.
    from pipeline.equipment.photographers import artist_name, resolve_photographer
    from pipeline.imaging.identity import CameraIdentity

    assert artist_name(artist) == name
    assert resolve_photographer(CameraIdentity(artist=artist))[0] == name
