"""Yes/No answers to the paper style's attribute questions (round, thin, long), derived per class.

No released file holds them. The paper's figure gives three examples (cellphone: no/no/no, knife: no/yes/yes,
bowl: yes/no/no); the other classes follow the shapes of ShapeNet's objects of that class: cans, bottles and jars
are round; bottles, knives and remotes are long; only knives are thin (the figure's cellphone is not).
"""

__all__ = ["CLASS_ATTRIBUTES", "attribute_answers"]

CLASS_ATTRIBUTES = {
    "jar": {"round": True, "thin": False, "long": False},
    "bottle": {"round": True, "thin": False, "long": True},
    "cellphone": {"round": False, "thin": False, "long": False},
    "bowl": {"round": True, "thin": False, "long": False},
    "knife": {"round": False, "thin": True, "long": True},
    "camera": {"round": False, "thin": False, "long": False},
    "can": {"round": True, "thin": False, "long": False},
    "remote": {"round": False, "thin": False, "long": True},
}


def attribute_answers(class_name: str) -> dict[str, str]:
    """`{"round": "Yes", "thin": "No", ...}` for a class, in the figure's answer form (no full stop)."""
    return {name: "Yes" if value else "No" for name, value in CLASS_ATTRIBUTES[class_name].items()}
