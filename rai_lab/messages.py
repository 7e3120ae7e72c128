"""Learner- and instructor-facing messages, in French and English."""

from __future__ import annotations

import os
import re

LANGS = ("fr", "en")

_MESSAGES: dict[str, dict[str, str]] = {
    "banner": {
        "fr": "rai-lab · mode {mode} · déploiement {deployment}",
        "en": "rai-lab · mode {mode} · deployment {deployment}",
    },
    "banner_replay": {
        "fr": "Réponses rejouées depuis la cassette {cassette} ({count} échanges enregistrés) : aucune requête ne quitte la machine.",
        "en": "Answers replayed from cassette {cassette} ({count} recorded exchanges): no request leaves this machine.",
    },
    "banner_live": {
        "fr": "Appels réels vers AZURE_OPENAI_ENDPOINT ; chaque échange est enregistré (sans clé ni hôte) dans {cassette}.",
        "en": "Real calls to AZURE_OPENAI_ENDPOINT; each exchange is recorded (without key or host) to {cassette}.",
    },
    "banner_quota": {
        "fr": "Quota du déploiement : {tpm} jetons par minute (paramètre tpm). Azure compte chaque appel pour ses jetons de prompt plus max_tokens × n ; le kit espace donc les appels pour ne jamais dépasser ce quota. À ce débit, comptez environ {exercise} s d'attente pour l'exercice et {further} min pour « Aller plus loin » ; une limite plus haute (dans Azure AI Studio, puis tpm) raccourcit l'attente.",
        "en": "Deployment quota: {tpm} tokens per minute (parameter tpm). Azure counts each call as its prompt tokens plus max_tokens × n, so the kit spaces the calls never to go over that quota. At this rate, expect about {exercise} s of waiting for the exercise and {further} min for \"Going further\"; a higher limit (in Azure AI Studio, then tpm) shortens the wait.",
    },
    "quota_wait": {
        "fr": "quota {tpm} jetons/min : {bar} encore {left} s avant l'appel {call}",
        "en": "quota {tpm} tokens/min: {bar} {left} s before call {call}",
    },
    "live_refused": {
        "fr": "Mode live impossible, aucun noyau n'a été démarré : {problems}. Définissez ces variables avec la clé et le point de terminaison de votre ressource Azure OpenAI (portail Azure, Clés et points de terminaison), ou travaillez hors ligne en mode replay.",
        "en": "Live mode refused, no kernel was started: {problems}. Set these variables to your Azure OpenAI resource's key and endpoint (Azure portal, Keys and Endpoint), or work offline in replay mode.",
    },
    "live_missing": {"fr": "{name} n'est pas définie", "en": "{name} is not set"},
    "live_placeholder": {
        "fr": "{name} vaut « {value} », la valeur d'exemple de l'exercice",
        "en": "{name} is \"{value}\", the exercise's example value",
    },
    "live_not_https": {
        "fr": "{name} doit commencer par https:// (http:// seulement vers 127.0.0.1, pour le serveur de substitution)",
        "en": "{name} must start with https:// (http:// only to 127.0.0.1, for the stand-in server)",
    },
    "provenance_standin": {
        "fr": "Provenance : serveur de substitution rai-lab (textes synthétiques, PAS les réponses d'un vrai modèle), enregistré le {recorded_at}.",
        "en": "Provenance: the rai-lab stand-in server (synthetic text, NOT a real model's answers), recorded on {recorded_at}.",
    },
    "provenance_azure": {
        "fr": "Provenance : Azure OpenAI, déploiement {deployment}, enregistré le {recorded_at}.",
        "en": "Provenance: Azure OpenAI, deployment {deployment}, recorded on {recorded_at}.",
    },
    "provenance_unknown": {
        "fr": "Provenance : inconnue (cassette sans métadonnées rai-lab).",
        "en": "Provenance: unknown (cassette without rai-lab metadata).",
    },
    "banner_spark": {
        "fr": "Spark : {spark}.",
        "en": "Spark: {spark}.",
    },
    "cassette_miss": {
        "fr": (
            "Aucune réponse enregistrée pour le prompt « {prompt} » (déploiement {deployment}) "
            "dans la cassette {cassette}.{detail} En mode replay, seuls les appels de l'exercice "
            "sont enregistrés : gardez les prompts, le prompt système, le modèle et max_tokens=100 "
            "tels que l'exercice les donne, ou passez en mode live (mode = \"live\") avec votre "
            "propre ressource Azure OpenAI."
        ),
        "en": (
            "No recorded answer for the prompt \"{prompt}\" (deployment {deployment}) in cassette "
            "{cassette}.{detail} In replay mode only the exercise's calls are recorded: keep the "
            "prompts, the system prompt, the model and max_tokens=100 as the exercise gives them, "
            "or switch to live mode (mode = \"live\") with your own Azure OpenAI resource."
        ),
    },
    "replay_other": {
        "fr": "Requête refusée en mode replay : {method} {url}. Seuls les appels de l'exercice à Azure OpenAI sont rejoués, et rien ne sort sur le réseau ; passez en mode live (mode = \"live\") pour appeler un autre service.",
        "en": "Request refused in replay mode: {method} {url}. Only the exercise's Azure OpenAI calls are replayed, and nothing goes out to the network; switch to live mode (mode = \"live\") to call another service.",
    },
    "miss_differs": {
        "fr": " Ce prompt est bien enregistré, mais avec {fields} différent(s) : {diffs}.",
        "en": " This prompt is recorded, but with a different {fields}: {diffs}.",
    },
    "cassette_not_found": {
        "fr": "Cassette introuvable : {cassette}. Vérifiez le chemin, ou enregistrez-la avec `rai-lab record`.",
        "en": "Cassette not found: {cassette}. Check the path, or record it with `rai-lab record`.",
    },
    "cassette_unreadable": {
        "fr": "Cassette illisible : {cassette} ({reason}). Elle n'a pas été chargée ; remplacez-la par une cassette enregistrée avec `rai-lab record`.",
        "en": "Unreadable cassette: {cassette} ({reason}). It was not loaded; replace it with one recorded by `rai-lab record`.",
    },
    "bad_mode": {
        "fr": "Mode inconnu : {mode!r}. Choisissez \"replay\" (hors ligne) ou \"live\" (Azure OpenAI réel).",
        "en": "Unknown mode: {mode!r}. Choose \"replay\" (offline) or \"live\" (real Azure OpenAI).",
    },
    "java_missing": {
        "fr": (
            "Spark local a besoin de Java 17, introuvable ici ({reason}). Installez-le "
            "(conda install -c conda-forge openjdk=17 ; ou apt install openjdk-17-jre-headless ; "
            "ou brew install openjdk@17) puis redémarrez le noyau, ou utilisez un serveur Spark "
            "Connect en définissant SPARK_REMOTE=sc://hôte:port."
        ),
        "en": (
            "Local Spark needs Java 17, which was not found ({reason}). Install it "
            "(conda install -c conda-forge openjdk=17; or apt install openjdk-17-jre-headless; "
            "or brew install openjdk@17) and restart the kernel, or use a Spark Connect server "
            "by setting SPARK_REMOTE=sc://host:port."
        ),
    },
    "hint_401": {
        "fr": "Azure OpenAI a refusé la clé (401). Vérifiez AZURE_OPENAI_API_KEY (portail Azure > Clés et points de terminaison) et que AZURE_OPENAI_ENDPOINT est celui de la même ressource.",
        "en": "Azure OpenAI refused the key (401). Check AZURE_OPENAI_API_KEY (Azure portal > Keys and Endpoint) and that AZURE_OPENAI_ENDPOINT belongs to the same resource.",
    },
    "hint_deployment": {
        "fr": "Le déploiement « {deployment} » n'existe pas sur cette ressource (404 DeploymentNotFound). Créez-le dans Azure AI Studio (page Deployments) sous ce nom exact, ou attendez quelques minutes s'il vient d'être créé.",
        "en": "Deployment \"{deployment}\" does not exist on this resource (404 DeploymentNotFound). Create it in Azure AI Studio (Deployments page) with that exact name, or wait a few minutes if you just created it.",
    },
    "hint_404": {
        "fr": "Ressource introuvable (404). Vérifiez AZURE_OPENAI_ENDPOINT (https://<votre-ressource>.openai.azure.com/) et AZURE_OPENAI_API_VERSION (par exemple 2023-03-15-preview).",
        "en": "Resource not found (404). Check AZURE_OPENAI_ENDPOINT (https://<your-resource>.openai.azure.com/) and AZURE_OPENAI_API_VERSION (for example 2023-03-15-preview).",
    },
    "hint_429": {
        "fr": "Limite de débit atteinte (429) : le déploiement a dépassé son quota de jetons ou d'appels par minute (5 000 jetons dans l'exercice ; Azure compte chaque appel pour ses jetons de prompt plus max_tokens × n). Attendez {retry_after} secondes puis réexécutez la cellule, ou augmentez la limite du déploiement (et le paramètre tpm).",
        "en": "Rate limit reached (429): the deployment went over its tokens or calls per minute (5,000 tokens in the exercise; Azure counts each call as its prompt tokens plus max_tokens × n). Wait {retry_after} seconds and run the cell again, or raise the deployment's limit (and the tpm parameter).",
    },
    "hint_content_filter": {
        "fr": "Le filtre de contenu d'Azure a bloqué ce prompt (400 content_filter, catégorie : {categories}). Reformulez le prompt ; le filtre fait partie des pratiques d'IA responsable du service.",
        "en": "Azure's content filter blocked this prompt (400 content_filter, category: {categories}). Rephrase the prompt; the filter is part of the service's responsible-AI practices.",
    },
    "hint_output_filter": {
        "fr": "rai-lab : le filtre de contenu d'Azure a retenu {count} réponse(s) au prompt « {prompt} » (catégorie : {categories}). L'appel a réussi (200), mais la réponse est vide (None) : elle a été filtrée, elle ne manque pas.",
        "en": "rai-lab: Azure's content filter withheld {count} answer(s) to the prompt \"{prompt}\" (category: {categories}). The call succeeded (200), but the answer is empty (None): it was filtered, not lost.",
    },
    "hint_connection": {
        "fr": "Impossible de joindre AZURE_OPENAI_ENDPOINT ({cause}). Vérifiez l'URL et votre connexion, ou travaillez hors ligne en mode replay (mode = \"replay\").",
        "en": "Could not reach AZURE_OPENAI_ENDPOINT ({cause}). Check the URL and your connection, or work offline in replay mode (mode = \"replay\").",
    },
    "hint_other": {
        "fr": "Azure OpenAI a répondu {status} : {message}",
        "en": "Azure OpenAI answered {status}: {message}",
    },
    # -- grading: what stopped a notebook, and why a check could not run (rai_lab.sealed) --
    "cell_time_limit": {
        "fr": "Limite de temps par cellule atteinte ({seconds:g} s) dans la cellule de code n° {cell} ({first_line}) : elle a été interrompue (boucle infinie ?) ; les cellules suivantes ont été exécutées.",
        "en": "Cell time limit reached ({seconds:g} s) in code cell {cell} ({first_line}): it was interrupted (an endless loop?); the cells after it were run.",
    },
    "notebook_time_limit": {
        "fr": "Limite de temps du notebook atteinte ({seconds:g} s) dans la cellule de code n° {cell} ({first_line}) : le notebook a été arrêté là ; les vérifications suivantes valent 0.",
        "en": "Notebook time limit reached ({seconds:g} s) in code cell {cell} ({first_line}): the notebook was stopped there; the checks after it score 0.",
    },
    "interrupt_ignored": {
        "fr": "Limite de temps atteinte ({seconds:g} s) dans la cellule de code n° {cell} ({first_line}), qui a ignoré l'interruption : le notebook a été arrêté là ; les vérifications suivantes valent 0.",
        "en": "Time limit reached ({seconds:g} s) in code cell {cell} ({first_line}), which ignored the interrupt: the notebook was stopped there; the checks after it score 0.",
    },
    "kernel_crashed": {
        "fr": "Le noyau Python s'est arrêté (plantage, mémoire épuisée ou sortie forcée) dans la cellule de code n° {cell} ({first_line}) : les vérifications d'avant gardent leurs points, les suivantes valent 0.",
        "en": "The Python kernel stopped (a crash, out of memory or a forced exit) in code cell {cell} ({first_line}): the checks before it keep their points, the ones after it score 0.",
    },
    "not_run_stopped": {
        "fr": "Non exécutée : le notebook a été arrêté plus haut. {why}",
        "en": "Not run: the notebook was stopped above. {why}",
    },
    "check_passed": {"fr": "✓ {label}", "en": "✓ {label}"},
    "check_failed": {"fr": "✗ {label}\n  {message}", "en": "✗ {label}\n  {message}"},
    "check_not_started": {
        "fr": "○ {label} — facultatif, pas encore commencé",
        "en": "○ {label} — optional, not started yet",
    },
    "cell_unfilled": {
        "fr": "Cette cellule est à vous : remplacez « raise NotImplementedError() » par le code que donne l'exercice juste au-dessus, puis exécutez-la.",
        "en": "This cell is yours to fill: replace \"raise NotImplementedError()\" with the code the exercise gives just above, then run it.",
    },
    "frames_hidden": {
        "fr": "… {count} niveau(x) dans {modules} masqué(s) (%tb affiche la trace complète)",
        "en": "… {count} level(s) in {modules} hidden (%tb shows the full traceback)",
    },
    "azure_placeholder": {
        "fr": "{name} vaut encore « {value} », la valeur d'exemple de l'exercice. {what} Puis réexécutez la cellule des variables d'environnement et celle-ci.",
        "en": "{name} still holds \"{value}\", the exercise's example value. {what} Then run the environment variables cell and this one again.",
    },
    "azure_missing": {
        "fr": "{name} n'est pas définie : exécutez la cellule des variables d'environnement (au-dessus) avant celle-ci. {what}",
        "en": "{name} is not set: run the environment variables cell (above) before this one. {what}",
    },
    "azure_not_https": {
        "fr": "AZURE_OPENAI_ENDPOINT vaut « {value} » : il faut une URL https complète. {what} Puis réexécutez la cellule des variables d'environnement et celle-ci.",
        "en": "AZURE_OPENAI_ENDPOINT is \"{value}\": it must be a full https URL. {what} Then run the environment variables cell and this one again.",
    },
    "azure_what_replay": {
        "fr": "En mode replay, rien ne part sur le réseau : n'importe quelle clé (par exemple \"ma-cle\") et n'importe quel point de terminaison https (par exemple \"https://ma-ressource.openai.azure.com/\") conviennent.",
        "en": "In replay mode nothing goes out to the network: any key (for example \"my-key\") and any https endpoint (for example \"https://my-resource.openai.azure.com/\") will do.",
    },
    "azure_what_live": {
        "fr": "En mode live, mettez la clé et le point de terminaison de votre ressource Azure OpenAI (portail Azure, Clés et points de terminaison).",
        "en": "In live mode, put your Azure OpenAI resource's key and endpoint (Azure portal, Keys and Endpoint).",
    },
    "spark_starting": {
        "fr": "Spark : démarrage en arrière-plan (la première cellule qui s'en sert l'attendra).",
        "en": "Spark: starting in the background (the first cell that uses it will wait for it).",
    },
    "spark_waiting": {
        "fr": "rai-lab : Spark finit de démarrer, cette cellule l'attend…",
        "en": "rai-lab: Spark is still starting, this cell waits for it…",
    },
    "output_cut": {
        "fr": "[… sortie coupée par rai-lab : plus de {limit} Mo de sortie pour ce notebook …]",
        "en": "[… output cut by rai-lab: more than {limit} MB of output for this notebook …]",
    },
}


def say(key: str, lang: str | None = None, **values: object) -> str:
    """The message `key` in `lang` (French when unknown), filled with `values`."""
    entry = _MESSAGES[key]
    return entry.get(lang or "fr", entry["fr"]).format(**values)


def detect_lang(explicit: str | None = None) -> str:
    """The learner's language: explicit, else RAI_LAB_LANG, else the notebook's path, else French."""
    for candidate in (explicit, os.environ.get("RAI_LAB_LANG")):
        if candidate in LANGS:
            return candidate
    # JupyterLab gives a kernel its notebook's path; nbgrader validate starts it in the notebook's folder.
    for where in (os.environ.get("JPY_SESSION_NAME", ""), os.getcwd()):
        found = re.search(r"responsible-ai-(fr|en)\b", where)
        if found:
            return found.group(1)
    return "fr"
