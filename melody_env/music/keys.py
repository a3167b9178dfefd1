"""Major and minor keys as small frozen dataclasses.

The original RL Tuner knew only C major (a hard-coded set of token indices). Here a key is a tonic
pitch class and a mode; every rule asks it about pitch classes, so all 24 keys work alike.

>>> key = Key.from_name("G major")
>>> key.tonic, key.dominant, key.name
(7, 2, 'G major')
>>> sorted(key.scale)
[0, 2, 4, 6, 7, 9, 11]
>>> Key.from_name("A minor").contains(np.array([57, 60, 68]))
array([ True,  True, False])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from melody_env.music.encoding import PITCH_CLASS_NAMES

MODES = ("major", "minor")
MAJOR_STEPS = (0, 2, 4, 5, 7, 9, 11)
# Natural minor: the same pitch set as the relative major, as the original's C major set served
# for A minor too. The raised leading tone of harmonic minor counts as out of key.
MINOR_STEPS = (0, 2, 3, 5, 7, 8, 10)

_FLAT_SPELLINGS = {
    "Db": 1,
    "Eb": 3,
    "Gb": 6,
    "Ab": 8,
    "Bb": 10,
    "Cb": 11,
    "Fb": 4,
    "E#": 5,
    "B#": 0,
}
KEY_NAMES = tuple(f"{PITCH_CLASS_NAMES[pc]} {mode}" for mode in MODES for pc in range(12))
"""The 24 canonical key names, ``"C major"`` ... ``"B minor"``."""


@dataclass(frozen=True)
class Key:
    """A major or minor key.

    Attributes:
        tonic: pitch class of the tonic, 0 (C) to 11 (B).
        mode: ``"major"`` or ``"minor"`` (natural minor).
    """

    tonic: int = 0
    mode: str = "major"

    def __post_init__(self) -> None:
        if not isinstance(self.tonic, (int, np.integer)) or not 0 <= self.tonic < 12:
            raise ValueError(f"key tonic must be a pitch class in [0, 11], got {self.tonic!r}")
        if self.mode not in MODES:
            raise ValueError(f"key mode must be one of {MODES}, got {self.mode!r}")
        object.__setattr__(self, "tonic", int(self.tonic))

    @classmethod
    def from_name(cls, name: str | Key) -> Key:
        """Parse ``"C major"``, ``"F# minor"``, ``"Bb major"`` (case-insensitive for the mode)."""
        if isinstance(name, Key):
            return name
        parts = str(name).split()
        if len(parts) == 2 and parts[1].lower() in MODES:
            letter = parts[0][0].upper() + parts[0][1:]
            pitch_classes = {n: i for i, n in enumerate(PITCH_CLASS_NAMES)} | _FLAT_SPELLINGS
            if letter in pitch_classes:
                return cls(pitch_classes[letter], parts[1].lower())
        raise ValueError(
            f"unknown key {name!r}; expected a tonic and a mode such as 'C major', 'A minor' or "
            f"'F# major'. Known keys: {', '.join(KEY_NAMES)}"
        )

    @property
    def name(self) -> str:
        return f"{PITCH_CLASS_NAMES[self.tonic]} {self.mode}"

    @property
    def index(self) -> int:
        """Position in :data:`KEY_NAMES` (0..23)."""
        return MODES.index(self.mode) * 12 + self.tonic

    @property
    def scale(self) -> frozenset[int]:
        """The seven pitch classes of the key."""
        steps = MAJOR_STEPS if self.mode == "major" else MINOR_STEPS
        return frozenset((self.tonic + step) % 12 for step in steps)

    @property
    def scale_mask(self) -> np.ndarray:
        """Boolean array of length 12, True for pitch classes in the key."""
        mask = np.zeros(12, dtype=bool)
        mask[list(self.scale)] = True
        return mask

    @property
    def mediant(self) -> int:
        """Pitch class of the third degree (major or minor third above the tonic)."""
        return (self.tonic + (4 if self.mode == "major" else 3)) % 12

    @property
    def dominant(self) -> int:
        """Pitch class of the fifth degree."""
        return (self.tonic + 7) % 12

    def semitones_to(self, other: Key | str) -> int:
        """Semitones, -6..+5, that move this key's tonic onto ``other``'s (modes ignored).

        The smallest interval, and for a tritone the one down (-6): the convention the shipped
        corpus was transposed with (each tune's key to C major or A minor), which the Note RNN was
        trained on. The one key transposition of the package: the corpus extraction, the MIDI
        primer reader and the envs' reading of the 24 keys all use it.

        >>> [Key.from_name(name).semitones_to("C major") for name in ("D major", "G major")]
        [-2, 5]
        >>> Key.from_name("F# major").semitones_to("C major"), Key().semitones_to("F# major")
        (-6, -6)
        """
        target = other if isinstance(other, Key) else Key.from_name(other)
        return (target.tonic - self.tonic + 6) % 12 - 6

    def contains(self, pitches: np.ndarray) -> np.ndarray:
        """True for each MIDI pitch whose pitch class is in the key."""
        return self.scale_mask[np.asarray(pitches) % 12]

    def __str__(self) -> str:
        return self.name


C_MAJOR = Key(0, "major")
