"""The microphone array: its geometry table, and the limits it sets (span, alias-free band)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from objectives.errors import InvalidConfig

SPEED_OF_SOUND = 343.0  # m/s in air at about 20 °C


@dataclass(frozen=True)
class ArrayConfig:
    """A microphone array in the horizontal plane; azimuth is counter-clockwise from +x.

    `linear`: n_mics on the x axis, `spacing_m` apart, centred. `circular`: n_mics evenly on
    a circle of `radius_m`, mic 0 on +x. `custom`: explicit (x, y) `positions_m` in channel
    order, as read from a recordings folder's array.json.
    """

    geometry: str = "linear"
    n_mics: int = 4
    # 4.5 cm keeps the array alias-free up to c/(2d) = 3.8 kHz, above the 3 kHz band's top edge.
    spacing_m: float = 0.045
    # 3.5 cm: a 6-mic ring has neighbours 3.5 cm apart, alias-free to 4.9 kHz (a ReSpeaker-sized board).
    radius_m: float = 0.035
    positions_m: tuple[tuple[float, float], ...] = ()

    def validate(self) -> None:
        if self.geometry not in GEOMETRIES:
            raise InvalidConfig("geometry", f"unknown geometry {self.geometry!r}; use one of {list(GEOMETRIES)}")
        if self.n_mics < 2:
            raise InvalidConfig("n_mics", f"needs at least 2 microphones, got {self.n_mics}")
        if self.geometry == "linear" and not self.spacing_m > 0:
            raise InvalidConfig("spacing_m", f"must be > 0 metres, got {self.spacing_m}")
        if self.geometry == "circular" and not self.radius_m > 0:
            raise InvalidConfig("radius_m", f"must be > 0 metres, got {self.radius_m}")
        if self.geometry == "custom" and len(self.positions_m) != self.n_mics:
            raise InvalidConfig(
                "positions_m", f"a custom array needs n_mics={self.n_mics} (x, y) positions, got "
                f"{len(self.positions_m)}; custom arrays come from a recordings folder's array.json",
            )
        if min(self._neighbour_distances()) <= 0:
            raise InvalidConfig("positions_m", "two microphones share a position")

    def positions(self) -> tuple[tuple[float, float], ...]:
        """(x, y) in metres per microphone, in channel order."""
        return GEOMETRIES[self.geometry](self)

    def _neighbour_distances(self) -> list[float]:
        points = self.positions()
        return [min(math.dist(p, q) for j, q in enumerate(points) if j != i) for i, p in enumerate(points)]

    @property
    def span_deg(self) -> float:
        """Azimuths the array can tell apart: 180 on a line (mirror angles look alike), else 360."""
        points = self.positions()
        x0, y0 = points[0]
        far = max(points, key=lambda p: math.dist(p, points[0]))
        # Collinear iff every point has zero cross product with the line through mic 0 and the farthest mic.
        collinear = all(
            abs((far[0] - x0) * (y - y0) - (far[1] - y0) * (x - x0)) < 1e-9 for x, y in points
        )
        return 180.0 if collinear else 360.0

    @property
    def alias_free_hz(self) -> float:
        """Highest frequency with no spatial aliasing: every mic within half a wavelength of a neighbour."""
        return SPEED_OF_SOUND / (2 * max(self._neighbour_distances()))


def _linear(array: ArrayConfig) -> tuple[tuple[float, float], ...]:
    return tuple(((i - (array.n_mics - 1) / 2) * array.spacing_m, 0.0) for i in range(array.n_mics))


def _circular(array: ArrayConfig) -> tuple[tuple[float, float], ...]:
    step = 2 * math.pi / array.n_mics
    return tuple((array.radius_m * math.cos(i * step), array.radius_m * math.sin(i * step))
                 for i in range(array.n_mics))


# The geometry table: a new layout is a function from the config to (x, y) positions.
GEOMETRIES = {"linear": _linear, "circular": _circular, "custom": lambda array: tuple(array.positions_m)}
