"""What the mails say, in each language a site may speak (en, ca, es).

The site's language (``SiteSettings.language``) picks the set; the
transcript a visitor asks for uses the widget's language when it sends one.
Every set has every key (``tests/unit/test_mail_render.py`` checks), so a
template never falls back mid-mail.
"""

from __future__ import annotations

LANGUAGES = ("en", "ca", "es")

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "offline_subject": "New message from {name} (offline)",
        "offline_intro": "{name} left a message on {shop} while no agent was online.",
        "unanswered_subject": "A chat on {shop} waits for an answer",
        "unanswered_intro": (
            "A visitor on {shop} has waited {minutes} min. and nobody has answered."
        ),
        "reply_subject": "Re: your message to {shop}",
        "reply_intro": "{agent} from {shop} answered your message:",
        "reply_hint": "Answer this e-mail to reply; your answer reaches the conversation.",
        "transcript_subject": "Your chat with {shop}",
        "transcript_intro": "The conversation you had with {shop}, as you asked.",
        "marker": "Write your answer above this line",
        "name": "Name",
        "email": "E-mail",
        "message": "Message",
        "open": "Open the conversation",
        "visitor": "You",
        "agent": "Agent",
        "file": "File",
        "prefs": "You get this e-mail because of your notification settings: {url}",
        "unsubscribe": "Stop e-mails from {shop}: {url}",
        "unsubscribe_link": "Stop e-mails from {shop}",
        "unsubscribed": "You will get no more e-mails from {shop} at {email}.",
        "unsubscribe_confirm": "Stop e-mails from {shop} to {email}?",
        "unsubscribe_button": "Stop e-mails",
    },
    "ca": {
        "offline_subject": "Missatge nou de {name} (fora de línia)",
        "offline_intro": "{name} ha deixat un missatge a {shop} quan no hi havia cap agent.",
        "unanswered_subject": "Un xat de {shop} espera resposta",
        "unanswered_intro": "Un visitant de {shop} fa {minutes} min. que espera i ningú no respon.",
        "reply_subject": "Re: el vostre missatge a {shop}",
        "reply_intro": "{agent}, de {shop}, ha respost el vostre missatge:",
        "reply_hint": "Responeu aquest correu; la resposta arriba a la conversa.",
        "transcript_subject": "La vostra conversa amb {shop}",
        "transcript_intro": "La conversa que heu tingut amb {shop}, tal com l'heu demanada.",
        "marker": "Escriviu la resposta damunt d'aquesta línia",
        "name": "Nom",
        "email": "Correu",
        "message": "Missatge",
        "open": "Obre la conversa",
        "visitor": "Vós",
        "agent": "Agent",
        "file": "Fitxer",
        "prefs": "Rebeu aquest correu per la vostra configuració d'avisos: {url}",
        "unsubscribe": "No vull més correus de {shop}: {url}",
        "unsubscribe_link": "No vull més correus de {shop}",
        "unsubscribed": "No rebreu més correus de {shop} a {email}.",
        "unsubscribe_confirm": "Voleu deixar de rebre correus de {shop} a {email}?",
        "unsubscribe_button": "Deixa de rebre correus",
    },
    "es": {
        "offline_subject": "Mensaje nuevo de {name} (fuera de línea)",
        "offline_intro": "{name} ha dejado un mensaje en {shop} cuando no había ningún agente.",
        "unanswered_subject": "Un chat de {shop} espera respuesta",
        "unanswered_intro": (
            "Un visitante de {shop} lleva {minutes} min. esperando y nadie responde."
        ),
        "reply_subject": "Re: su mensaje a {shop}",
        "reply_intro": "{agent}, de {shop}, ha respondido a su mensaje:",
        "reply_hint": "Responda a este correo; la respuesta llega a la conversación.",
        "transcript_subject": "Su conversación con {shop}",
        "transcript_intro": "La conversación que ha tenido con {shop}, como ha pedido.",
        "marker": "Escriba su respuesta encima de esta línea",
        "name": "Nombre",
        "email": "Correo",
        "message": "Mensaje",
        "open": "Abrir la conversación",
        "visitor": "Usted",
        "agent": "Agente",
        "file": "Archivo",
        "prefs": "Recibe este correo por su configuración de avisos: {url}",
        "unsubscribe": "No quiero más correos de {shop}: {url}",
        "unsubscribe_link": "No quiero más correos de {shop}",
        "unsubscribed": "No recibirá más correos de {shop} en {email}.",
        "unsubscribe_confirm": "¿Dejar de recibir correos de {shop} en {email}?",
        "unsubscribe_button": "Dejar de recibir correos",
    },
}


def strings(language: str) -> dict[str, str]:
    """The set of ``language``, English for any other."""
    return STRINGS.get(language, STRINGS["en"])
