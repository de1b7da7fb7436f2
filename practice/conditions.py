"""The conditions and keywords patients search for, shipped with the code: each with the words
people use for it and the specialties (by slug) whose practitioners treat it.

Migration `0012_conditions` loads them into every clinic (`practice.Condition`); a clinic then
adds its own, adds synonyms, links practitioners or points a condition at its own specialties in
the admin (*Practice › Conditions*). A slug no specialty of the clinic has simply finds nobody.
"""

# name, synonyms (misspellings need none: the search compares by trigram similarity), specialties
CONDITIONS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    (
        "Autism",
        ("autism spectrum disorder", "ASD", "autistic", "Asperger", "pervasive developmental"),
        ("behavior-analysis", "psychology", "speech-therapy", "occupational-therapy"),
    ),
    (
        "ADHD",
        ("attention deficit", "hyperactivity", "ADD", "attention deficit hyperactivity disorder"),
        ("psychology", "psychiatry", "behavior-analysis"),
    ),
    (
        "Challenging behavior",
        ("behaviour problems", "tantrums", "aggression", "self-injury", "meltdowns"),
        ("behavior-analysis", "psychology"),
    ),
    (
        "Stuttering",
        ("stammering", "stammer", "stutter", "fluency disorder"),
        ("speech-therapy",),
    ),
    (
        "Speech delay",
        ("late talker", "language delay", "articulation", "apraxia of speech", "lisp"),
        ("speech-therapy",),
    ),
    (
        "Feeding difficulties",
        ("picky eating", "food refusal", "swallowing", "dysphagia"),
        ("speech-therapy", "occupational-therapy", "nutrition"),
    ),
    (
        "Sensory processing",
        ("sensory issues", "fine motor", "handwriting", "motor skills", "dyspraxia"),
        ("occupational-therapy",),
    ),
    (
        "Anxiety",
        ("worry", "panic attacks", "phobia", "OCD", "obsessive compulsive"),
        ("psychology", "psychiatry"),
    ),
    ("Depression", ("low mood", "sadness"), ("psychology", "psychiatry")),
    (
        "Arrhythmia",
        ("irregular heartbeat", "palpitations", "atrial fibrillation", "AFib", "tachycardia"),
        ("electrophysiology", "cardiology"),
    ),
    (
        "Heart failure",
        ("weak heart", "cardiomyopathy", "fluid retention", "shortness of breath"),
        ("heart-failure", "cardiology"),
    ),
    (
        "Chest pain",
        ("angina", "coronary artery disease", "heart attack"),
        ("cardiology", "cardiac-imaging"),
    ),
    ("High blood pressure", ("hypertension",), ("cardiology",)),
    (
        "Heart murmur",
        ("valve disease", "echocardiogram", "echo"),
        ("cardiac-imaging", "cardiology"),
    ),
    (
        "Recovery after a heart attack",
        ("cardiac rehab", "after heart surgery", "bypass recovery"),
        ("cardiac-rehabilitation", "cardiology"),
    ),
    (
        "Back pain",
        ("neck pain", "sciatica", "sports injury", "sprain", "after surgery rehab"),
        ("physiotherapy",),
    ),
    ("Weight management", ("diet", "obesity", "diabetes diet"), ("nutrition",)),
)
