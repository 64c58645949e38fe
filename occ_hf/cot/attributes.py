"""Yes/No answers to the paper style's attribute questions (round, thin, long), derived per class.

No released file holds them. The paper's figure gives three examples (cellphone: no/no/no, knife: no/yes/yes,
bowl: yes/no/no); the other classes follow the shapes of ShapeNet's objects of that class: cans, bottles and jars
are round; bottles, knives and remotes are long; only knives are thin (the figure's cellphone is not).
"""

__all__ = ["CLASS_ATTRIBUTES", "attribute_of_question"]

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


def attribute_of_question(question: str) -> str:
    """Which attribute a describe question asks about ("Is the object in the hand thin?" -> "thin")."""
    asked = [name for name in ("round", "thin", "long") if f" {name}?" in question]
    if len(asked) != 1:
        raise ValueError(f"{question!r} asks about none (or several) of round, thin, long.")
    return asked[0]
