"""Labelled sound effects from three game data packs, each clip named by what it sounds like.

- 0 A.D. (Debian `0ad-data`, CC-BY-SA-3.0): the label is in the path inside `public.zip` (`audio/ambient/weather/
  rain.ogg`, `audio/resource/mining/mine_stone_3.ogg`); only the audio members are read out of the 3.2 GB zip.
- MegaGlest (Debian `megaglest-data`, CC-BY-SA-3.0): files named `<unit>_<event>N` under the unit's folder, or by
  the sound (`anvil`, `rain`) in the shared and tileset folders.
- SuperTuxKart (Debian `supertuxkart-data`): `data/sfx/<name>.ogg`.

The tables below map names to a clean label and a short caption that say only what the name makes certain. Unit
acknowledgements and selections (`archer_ack1`) are voice lines of game units, and interface chimes and music say
nothing about a sound, so they are left out: a name no rule matches is skipped.
"""

import re
import zipfile
from pathlib import Path

from mint.io import atomic_file
from mint.training.sources.packages import cache_root, debian_package


LICENSES = {
    "0ad": "CC-BY-SA-3.0",
    "megaglest": "CC-BY-SA-3.0",
    "supertuxkart": "CC-BY-SA-3.0 / GPL-3.0-or-later (per file, see the package's copyright)",
}
MATERIALS = {"dirt": "dirt", "metal": "metal", "stone": "stone", "wood": "wood", "grass": "grass", "gravel": "gravel",
             "rock": "rock", "sand": "sand", "snow": "snow"}

# 0 A.D.: (pattern on the path under audio/, without the trailing number and extension) -> (label, caption). First
# match wins; {0} is the pattern's first group.
ZERO_AD = [
    (r"actor/fauna/(?:animal|movement)/camel.*|actor/fauna/death/death_camel", "camel", "A camel grunts."),
    (r"actor/fauna/animal/cattle", "cow", "A cow moos."),
    (r"actor/fauna/animal/chicken", "chicken", "A chicken clucks."),
    (r"actor/fauna/animal/elephant_death", "elephant", "An elephant trumpets as it falls."),
    (r"actor/fauna/animal/elephant.*", "elephant", "An elephant trumpets."),
    (r"actor/fauna/animal/flamingo", "bird call", "A flamingo calls."),
    (r"actor/fauna/animal/horse_death|actor/(?:fauna|mounted)/death/death_horse", "horse",
     "A horse cries out as it falls."),
    (r"actor/fauna/animal/horse.*", "horse", "A horse neighs and snorts."),
    (r"actor/fauna/animal/lion.*", "lion", "A lion roars."),
    (r"actor/fauna/animal/peacock_call", "bird call", "A peacock calls."),
    (r"actor/fauna/animal/pig.*", "pig", "A pig squeals."),
    (r"actor/fauna/animal/sheep", "sheep", "A sheep bleats."),
    (r"actor/fauna/death/goat", "goat", "A goat bleats."),
    (r"actor/fauna/death/animal_death_generic", "animal cry", "An animal cries out in pain."),
    (r"actor/gate/stonegate_(open|close)", "stone gate", "A heavy stone gate grinds {0}."),
    (r"actor/human/death/female_death", "death scream", "A woman screams as she is struck down."),
    (r"actor/human/death/(?:male_)?death", "death scream", "A man cries out as he is struck down."),
    (r"actor/human/movement/footsteps/fo+rstep_(\w+?)_running", "footsteps on {0}", "Someone runs on {0}."),
    (r"actor/human/movement/footsteps/fo+tstep_(\w+?)_walking", "footsteps on {0}", "Someone walks on {0}."),
    (r"actor/human/movement/hstep(?:_run)?_dirt_mn", "footsteps on dirt", "Footsteps on dirt."),
    (r"actor/mounted/movement/mstep", "hoofbeats", "A horse's hooves on the ground."),
    (r"actor/singlesteps/fs_(\w+)", "footsteps on {0}", "A footstep on {0}."),
    (r"actor/ship/(?:ship_move|smove|warship_move)", "ship at sea", "A ship moves through the water."),
    (r"actor/ship/warship_death", "ship breaking", "A wooden ship breaks apart and sinks."),
    (r"ambient/building/amb_farm", "farmyard", "Farmyard sounds: animals and people at work."),
    (r"ambient/building/amb_port", "harbour", "A busy harbour."),
    (r"ambient/building/amb_trade", "market", "A busy market with people trading."),
    (r"ambient/dayscape/day_temperate(?:_gen)?", "countryside", "Birds and insects on a summer day."),
    (r"ambient/dayscape/day_tropical", "jungle", "Birds and insects in a tropical forest."),
    (r"ambient/water/river_(slow|med|fast|raging)", "river", "A {0} river flows."),
    (r"ambient/water/waterfall", "waterfall", "A waterfall."),
    (r"ambient/water/wave(?:crash|rocky)?", "waves", "Waves break on the shore."),
    (r"ambient/weather/rain", "rain", "Rain falls."),
    (r"ambient/weather/snowstorm", "snowstorm", "A snowstorm howls."),
    (r"ambient/weather/thunder", "thunder", "Thunder rumbles."),
    (r"ambient/weather/wind(?:gust|storm)?", "wind", "Wind blows."),
    (r"ambient/weather/windleaves", "wind", "Wind blows through leaves."),
    (r"attack/destruction/building_collapse_large", "building collapse", "A large building collapses."),
    (r"attack/destruction/explode_debris", "explosion", "An explosion scatters debris."),
    (r"attack/impact/arrow_(dirt|metal|stone|wood)", "arrow hitting {0}", "An arrow strikes {0}."),
    (r"attack/impact/arrow", "arrow hit", "An arrow strikes its target."),
    (r"attack/impact/flesh(?:imp|stab)", "stab", "A blade stabs into flesh."),
    (r"attack/impact/shield_(metal|wood)", "shield hit", "A weapon strikes a {0} shield."),
    (r"attack/impact/siegeprojectilehit", "boulder impact", "A heavy stone projectile crashes down."),
    (r"attack/impact/sling_(metal|stone|wood)", "sling stone hitting {0}", "A sling stone strikes {0}."),
    (r"attack/siege/ballist(?:_rome)?_attack", "ballista shot", "A ballista fires a bolt."),
    (r"attack/siege/onager_shooting", "catapult shot", "A catapult hurls a stone."),
    (r"attack/siege/ram_attack", "battering ram", "A battering ram slams into a wall."),
    (r"attack/siege/(?:onager_moving|ram_move)", "siege engine rolling", "A wooden siege engine rolls along."),
    (r"attack/weapon/musket", "musket shot", "A musket fires."),
    (r"attack/weapon/arrowfly", "arrow flying", "An arrow whizzes past."),
    (r"attack/weapon/bow_attack", "bow shot", "An arrow is loosed from a bow."),
    (r"attack/weapon/jav_attack", "javelin throw", "A javelin is thrown."),
    (r"attack/weapon/(?:pike|spear)_attack", "spear thrust", "A spear thrusts and strikes."),
    (r"attack/weapon/sling(?:_attack)?", "sling shot", "A sling whirls and releases a stone."),
    (r"attack/weapon/sword_attack", "sword strike", "A sword swings and strikes."),
    (r"attack/weapon/swordhit.*", "swords clashing", "Swords clash."),
    (r"resource/construction/con_saw", "sawing wood", "Someone saws wood."),
    (r"resource/construction/con_stone", "stone masonry", "A mason chisels stone."),
    (r"resource/construction/con_wood", "hammering wood", "Someone hammers on wood."),
    (r"resource/farming/hoe", "hoeing", "A hoe digs into the soil."),
    (r"resource/foraging/leaves", "rustling leaves", "Leaves rustle as someone forages."),
    (r"resource/gathering/gather_field", "harvesting grain", "Grain is cut and gathered."),
    (r"resource/gathering/gather_fruit", "picking fruit", "Fruit is picked from a bush."),
    (r"resource/gathering/gather_meat", "butchering", "Meat is cut from a carcass."),
    (r"resource/lumbering/lumber_tree", "chopping wood", "An axe chops into a tree."),
    (r"resource/mining/mine_metal", "mining metal", "A pickaxe strikes metal ore."),
    (r"resource/mining/mine_stone", "quarrying stone", "A pickaxe strikes stone."),
]

# MegaGlest: units whose every sound is the animal's own (acknowledgements of an animal are its call).
ANIMALS = {"sheep": "sheep", "cow": "cow", "mudchute_cow": "cow", "pig": "pig", "wild_sow": "pig",
           "chicken": "chicken", "bull": "bull", "eagle": "eagle", "wolf": "wolf", "hawk": "hawk", "owl": "owl",
           "rooster": "rooster", "bee": "bee", "ele": "elephant", "elephant": "elephant", "snake": "snake"}
ANIMAL_CAPTIONS = {"sheep": "A sheep bleats.", "cow": "A cow moos.", "pig": "A pig grunts and squeals.",
                   "chicken": "A chicken clucks.", "bull": "A bull snorts and bellows.", "eagle": "An eagle screeches.",
                   "wolf": "A wolf howls.", "hawk": "A hawk screeches.", "owl": "An owl hoots.",
                   "rooster": "A rooster crows.", "bee": "Bees buzz.", "elephant": "An elephant trumpets.",
                   "snake": "A snake hisses."}
WEAPONS = {
    "sword strike": ({"swordman", "swordman_berserk", "guard", "warrior", "anubis_warrior", "ghost_armor"},
                     "A sword swings and strikes."),
    "axe strike": ({"battleaxe", "battleaxe_berserk", "axe_indian"}, "An axe swings and strikes."),
    "axe throw": ({"axe_thrower"}, "An axe is thrown."),
    "spear thrust": ({"spearman", "spearman_berserk"}, "A spear thrusts and strikes."),
    "stick fight": ({"stickfighter"}, "Wooden staffs strike each other."),
    "club strike": ({"cudgel", "cudgel_lady"}, "A club strikes."),
    "bow shot": ({"archer", "fire_archer"}, "An arrow is loosed from a bow."),
    "catapult shot": ({"catapult"}, "A catapult hurls a stone."),
    "magic spell": ({"archmage", "battlemage", "summoner", "initiate", "magician"}, "A magic spell is cast."),
    "monster attack": ({"daemon", "behemoth", "golem", "mummy"}, "A monster snarls as it attacks."),
    "dragon roar": ({"dragon", "evil_dragon", "dragon_rider", "dr"}, "A dragon roars."),
}
MACHINES = {"catapult", "machine", "battle_machine", "airship", "orni", "ornithopter", "carpet", "flying_carpet"}
MONSTERS = WEAPONS["monster attack"][0] | WEAPONS["dragon roar"][0] | {"genie", "ab"}
FEMALE = {"princess", "valkyrie", "flying_valkyrie", "cudgel_lady", "cudgel", "priestess"}
MEGAGLEST_NAMES = [  # sounds named by what they are
    (r"anvil", "anvil", "A hammer rings on an anvil."),
    (r"water", "water", "Water flows."),
    (r"rain", "rain", "Rain falls."),
    (r"wind", "wind", "Wind blows."),
    (r"(?:night|nightime)", "night", "Crickets and night animals."),
    (r"(?:day|sunny_day|desertday)", "countryside", "Birds and insects during the day."),
    (r"\w*(?:_mine|_harvest)", "mining", "A pickaxe strikes rock."),
    (r"\w*_harvest_wood", "chopping wood", "An axe chops into a tree."),
    (r"\w*_build", "hammering", "Someone hammers, building."),
    (r"(?:arrow_hit|firearrowhit)", "arrow hit", "An arrow strikes its target."),
    (r"\w*_building_fall", "building collapse", "A building collapses."),
    (r"(?:catapult|machine)_walk", "siege engine rolling", "A war machine rolls along."),
    (r"horseman_walk", "hoofbeats", "A horse's hooves on the ground."),
    (r"(?:golem|behemoth|dr)_walk|elewalk", "heavy footsteps", "Heavy footsteps of a huge creature."),
]
SUPERTUXKART = {
    "thunder": ("thunder", "Thunder rumbles."), "rain": ("rain", "Rain falls."),
    "river_loop": ("river", "A river flows."), "waterfall_loop_2": ("waterfall", "A waterfall."),
    "splash": ("splash", "Something splashes into water."), "horn": ("car horn", "A car horn honks."),
    "clock": ("clock ticking", "A clock ticks."), "explosion": ("explosion", "An explosion."),
    "engine_large": ("engine", "A large engine runs."), "engine_small": ("engine", "A small engine runs."),
    "car_revup": ("engine revving", "A car engine revs up."), "car_accel": ("engine revving", "A car accelerates."),
    "skid": ("tyres skidding", "Tyres skid."), "crash": ("crash", "A crash."), "crash2": ("crash", "A crash."),
    "crash3": ("crash", "A crash."), "anvil": ("anvil", "A hammer rings on an anvil."),
    "boing": ("spring boing", "A springy boing."), "ball_bounce": ("ball bouncing", "A ball bounces."),
    "exotic-birds": ("birdsong", "Exotic birds sing."), "exotic-birds_2": ("birdsong", "Exotic birds sing."),
    "fireworks_show": ("fireworks", "Fireworks bang and crackle."), "WilhelmScream": ("scream", "A man screams."),
    "airplane_jetEngine": ("jet engine", "A jet engine roars."), "static-radio": ("radio static", "Radio static."),
    "metal_clang": ("metal clang", "Metal clangs."), "machine_sound": ("machine", "A machine whirs and clanks."),
    "hammer": ("hammering", "A hammer strikes."), "bowling_roll": ("bowling ball rolling", "A bowling ball rolls."),
    "inflate": ("inflating", "Something is inflated with air."), "gnu_flute": ("flute", "A flute plays."),
    "lenautile_restaurant": ("restaurant", "People chatting in a restaurant."),
}


def _match(rules, name: str):
    for pattern, label, caption in rules:
        found = re.fullmatch(pattern, name)
        if found:
            words = [MATERIALS.get(g, g) for g in found.groups()]
            return label.format(*words), caption.format(*words)
    return None


def zero_ad_label(path: str):
    """(label, caption) of a path under `audio/` in 0 A.D.'s `public.zip`, or None when it is not a labelled sound."""
    name, audio = re.subn(r"(?:_?\d+)?\.(?:ogg|wav)$", "", path.lower().removeprefix("audio/"))
    return _match(ZERO_AD, name) if audio else None  # `audio/` also holds the XML that places sounds on actors


def megaglest_label(unit: str, stem: str):
    """(label, caption) of a MegaGlest sound `stem` found in unit folder `unit` ("" outside units), or None."""
    base = re.sub(r"_?\d+[a-z]?$", "", stem.lower())
    if base in {"attack", "die", "ack", "select", "hit", "walk"} and unit:
        base = f"{unit}_{base}"
    who, _, event = base.rpartition("_")
    animal = ANIMALS.get(base) or ANIMALS.get(who) or ANIMALS.get(unit)
    if animal:
        return animal, ANIMAL_CAPTIONS[animal]
    named = _match(MEGAGLEST_NAMES, base)
    if named or event in {"ack", "select", "sel", "standing", "summon", "heal", "prod"}:
        return named
    if event == "attack":
        for label, (units, caption) in WEAPONS.items():
            if who in units or (unit in units and not who):
                return label, caption
        return None
    if event == "die":
        if who in MACHINES or unit in MACHINES:
            return "machine destroyed", "A war machine breaks apart."
        if who in MONSTERS or unit in MONSTERS:
            return "monster death", "A monster howls as it dies."
        if who in FEMALE or unit in FEMALE:
            return "death scream", "A woman screams as she is struck down."
        return "death scream", "A man cries out as he is struck down."
    return None


def zero_ad_clips() -> list[tuple[str, Path, str, str]]:
    """(key, path, label, caption) of 0 A.D.'s labelled sounds, read once out of `public.zip` into the cache."""
    archive = debian_package("0ad-data") / "usr/share/games/0ad/mods/public/public.zip"
    if not archive.is_file():
        raise FileNotFoundError(f"0 A.D. data is missing: {archive}")
    folder = cache_root() / f"0ad-audio-{archive.stat().st_size}"
    clips = []
    with zipfile.ZipFile(archive) as zipped:
        for member in zipped.infolist():
            if not member.filename.startswith("audio/") or member.is_dir():
                continue
            labelled = zero_ad_label(member.filename)
            if labelled is None:
                continue
            path = folder / member.filename
            if not path.is_file() or path.stat().st_size != member.file_size:
                with atomic_file(path) as partial:
                    partial.write_bytes(zipped.read(member))
            clips.append((member.filename.removeprefix("audio/"), path, *labelled))
    return clips


def megaglest_clips() -> list[tuple[str, Path, str, str]]:
    root = debian_package("megaglest-data") / "usr/share/games/megaglest"
    clips = []
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in {".wav", ".ogg"} or not path.is_file():
            continue
        parts = path.relative_to(root).parts
        unit = parts[parts.index("units") + 1] if "units" in parts else ""
        labelled = megaglest_label(unit, path.stem)
        if labelled:
            clips.append((path.relative_to(root).as_posix(), path, *labelled))
    return clips


def supertuxkart_clips() -> list[tuple[str, Path, str, str]]:
    root = debian_package("supertuxkart-data") / "usr/share/games/supertuxkart/data"
    clips = [(path.relative_to(root).as_posix(), path, *SUPERTUXKART[path.stem])
             for path in sorted((root / "sfx").glob("*.ogg")) if path.stem in SUPERTUXKART]
    clips += [(path.relative_to(root).as_posix(), path, "steam train", "A steam locomotive puffs along.")
              for path in sorted((root / "library").glob("*steamLocomotive*/*.ogg"))]
    return clips


CLIPS = {"0ad": zero_ad_clips, "megaglest": megaglest_clips, "supertuxkart": supertuxkart_clips}


def effect_rows(source: str) -> list[dict]:
    """Classification (the label) and captioning (the caption) of every labelled clip of `source`, split by file."""
    from mint.training.corpus import row

    rows = []
    for key, path, label, caption in CLIPS[source]():
        fields = {"source": source, "key": key, "language": "", "license": LICENSES[source]}
        rows += [row(path, label, "classification", **fields), row(path, caption, "captioning", **fields)]
    return rows
