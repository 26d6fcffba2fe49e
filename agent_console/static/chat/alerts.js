// Getting the agent's attention: a short beep (WebAudio, no sound file), a
// desktop notification once the agent allowed them, and a count in the tab's
// title. Whether to beep and which desktop notifications to show are the agent's
// preferences, kept on the server (agent_console/alert_prefs.py).

import { t } from "../i18n.js";

/** @typedef {"new" | "all" | "none"} Desktop */

export class Alerts {
  /**
   * @param {string} title the page's own title
   * @param {{sound: boolean, desktop: string, csrf: string}} prefs
   */
  constructor(title, prefs) {
    this.title = title;
    this.sound = prefs.sound;
    /** @type {Desktop} */
    this.desktop = prefs.desktop === "all" || prefs.desktop === "none" ? prefs.desktop : "new";
    this.csrf = prefs.csrf;
    /** @type {AudioContext | null} */
    this.audio = null;
    // Browsers start audio only after a user gesture: prepare it on the first one.
    const unlock = () => {
      this.context();
      removeEventListener("pointerdown", unlock);
      removeEventListener("keydown", unlock);
    };
    addEventListener("pointerdown", unlock);
    addEventListener("keydown", unlock);
  }

  context() {
    if (!this.audio && typeof AudioContext !== "undefined") {
      try {
        this.audio = new AudioContext();
      } catch {
        this.audio = null;
      }
    }
    if (this.audio?.state === "suspended") this.audio.resume().catch(() => {});
    return this.audio;
  }

  /** Switch the sound on or off, for this agent everywhere. @param {boolean} on */
  async setSound(on) {
    this.sound = on;
    const r = await fetch("/console/api/alerts", {
      method: "POST",
      headers: { "X-CSRF-Token": this.csrf, "Content-Type": "application/json", Accept: "application/json" },
      credentials: "same-origin",
      body: JSON.stringify({ sound: on }),
    });
    if (!r.ok) throw new Error(t("the sound setting was not saved (%(status)s)", { status: r.status }));
  }

  /** Whether a desktop notification of this kind is wanted. @param {"chat" | "message"} kind */
  wants(kind) {
    return this.desktop === "all" || (this.desktop === "new" && kind === "chat");
  }

  /** Two short tones; `high` for a new chat. @param {boolean} [high] */
  beep(high = false) {
    if (!this.sound) return;
    const ctx = this.context();
    if (!ctx || ctx.state !== "running") return;
    const start = ctx.currentTime;
    [0, 0.16].forEach((delay, i) => {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = "sine";
      osc.frequency.value = (high ? 880 : 660) * (i ? 1.25 : 1);
      gain.gain.setValueAtTime(0.0001, start + delay);
      gain.gain.exponentialRampToValueAtTime(0.2, start + delay + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + delay + 0.14);
      osc.connect(gain).connect(ctx.destination);
      osc.start(start + delay);
      osc.stop(start + delay + 0.15);
    });
  }

  get canNotify() {
    return typeof Notification !== "undefined";
  }

  get permission() {
    return this.canNotify ? Notification.permission : "denied";
  }

  /** Ask for desktop notifications (must run in a click handler). */
  async ask() {
    if (!this.canNotify) return "denied";
    return Notification.requestPermission();
  }

  /**
   * A desktop notification while the page is not looked at, if the agent wants this kind.
   * @param {"chat" | "message"} kind
   * @param {string} title @param {string} body @param {string} tag @param {() => void} onClick
   */
  notify(kind, title, body, tag, onClick) {
    if (!this.wants(kind) || this.permission !== "granted" || (document.visibilityState === "visible" && document.hasFocus())) return;
    try {
      const n = new Notification(title, { body: body.slice(0, 200), tag });
      n.onclick = () => {
        window.focus();
        onClick();
        n.close();
      };
    } catch {
      // some platforms only allow notifications from a service worker
    }
  }

  /** @param {number} count things waiting for the agent */
  badge(count) {
    const title = count ? `(${count}) ${this.title}` : this.title;
    if (document.title !== title) document.title = title;
  }
}
