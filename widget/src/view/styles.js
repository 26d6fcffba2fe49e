// The widget's CSS. It lives in the shadow root, so the shop's CSS cannot
// reach inside and ours cannot leak out; `:host` resets the one element the
// shop's CSS can see (with !important, which beats the page's own !important
// rules for the host, per the shadow-DOM cascade). Colours are custom
// properties on `.w`, light by default: body text #1f2937 on #fff (14.7:1),
// secondary #4b5563 on #fff (7.6:1); `.w.dark` (and `.w.auto` when the system
// is dark) swaps them for DARK below. The brand colour's text colour is
// computed for contrast (colors.js) and is the same in both.

// The dark palette (`data-theme="dark"`, or "auto" when the system asks for
// dark): body text #f3f4f6 on #1f2937 (13.3:1), secondary #d1d5db on #1f2937
// (10.0:1) and on #111827 (12.0:1), the agent's bubble #f9fafb on #374151
// (9.9:1), links #bfdbfe on #374151 (7.3:1), errors #fca5a5 (7.7:1), field
// borders #9ca3af (5.8:1; 3:1 is asked of them).
const DARK = "color-scheme:dark;--b:#1f2937;--t:#f3f4f6;--m:#d1d5db;--l:#374151;--g:#111827;--u:#374151;--v:#f9fafb;--a:#bfdbfe;--r:#fca5a5;--o:#9ca3af;--k:#f9fafb;--s:#86efac;--i:#d1d5db";

export const CSS = `
:host{all:initial!important;display:block!important;position:static!important;visibility:visible!important;opacity:1!important;pointer-events:none!important;contain:none!important}
*{box-sizing:border-box;margin:0;padding:0}
[hidden]{display:none!important}
.w{--b:#fff;--t:#1f2937;--m:#4b5563;--l:#e5e7eb;--g:#f9fafb;--u:#e5e7eb;--v:#111827;--a:#1e40af;--r:#b91c1c;--o:#6b7280;--k:#111827;--s:#166534;--i:#374151;font:15px/1.45 system-ui,sans-serif;color:var(--t);pointer-events:none;-webkit-text-size-adjust:100%}
.w :where(button,textarea,input){font:inherit;color:inherit}
button{cursor:pointer;background:none;border:0}
.bubble,.panel{pointer-events:auto;position:fixed;z-index:2147483000}
.bubble{right:20px;bottom:20px;width:60px;height:60px;border-radius:50%;background:var(--c);color:var(--on);display:flex;align-items:center;justify-content:center;box-shadow:0 4px 16px rgba(0,0,0,.25)}
.bubble svg{width:28px;height:28px;fill:currentColor}
.badge{position:absolute;top:-3px;right:-3px;min-width:22px;height:22px;padding:0 6px;border-radius:11px;background:#b91c1c;color:#fff;font-size:12px;font-weight:700;line-height:22px;text-align:center;box-shadow:0 0 0 2px var(--b)}
.panel{right:20px;bottom:92px;width:380px;height:600px;max-height:calc(100vh - 112px);display:flex;flex-direction:column;background:var(--b);border-radius:16px;box-shadow:0 12px 40px rgba(0,0,0,.28);overflow:hidden}
.head{display:flex;align-items:center;gap:10px;padding:14px 12px 14px 16px;background:var(--c);color:var(--on)}
.head .who{flex:1;min-width:0}
.head h2{font-size:16px;font-weight:600;line-height:1.3;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.head p{font-size:13px}
.head button{width:36px;height:36px;border-radius:8px;display:flex;align-items:center;justify-content:center;color:inherit;flex:none}
.head button svg{width:20px;height:20px;fill:currentColor}
.avatar{flex:none;width:38px;height:38px;border-radius:50%;display:flex;align-items:center;justify-content:center;font-weight:700;font-size:15px;background:#fff;color:#1f2937}
.log{flex:1;overflow-y:auto;padding:14px;display:flex;flex-direction:column;gap:8px;background:var(--g);list-style:none;overscroll-behavior:contain}
.msg{max-width:82%;align-self:flex-start;display:flex;flex-direction:column;gap:2px}
.msg .b{padding:8px 12px;border-radius:14px;border-bottom-left-radius:4px;background:var(--u);color:var(--v);white-space:pre-wrap;overflow-wrap:anywhere}
.msg.me{align-self:flex-end;align-items:flex-end}
.msg.me .b{background:var(--c);color:var(--on);border-radius:14px;border-bottom-right-radius:4px}
.msg .b a{color:var(--a);text-decoration:underline}
.msg.me .b a{color:inherit}
.msg .meta{font-size:12px;color:var(--m);padding:0 4px}
.msg.pending .b{outline:2px dashed var(--o);outline-offset:1px}
.msg.failed .b{box-shadow:0 0 0 2px var(--r)}
.msg .meta button{text-decoration:underline;color:var(--r);padding:0 2px}
.sys{align-self:center;text-align:center;font-size:13px;color:var(--m);padding:2px 8px}
.greet .b{background:var(--b);border:1px solid var(--l)}
.status{padding:6px 14px;font-size:13px;color:var(--m);background:var(--b);border-top:1px solid var(--l)}
.typing{padding:4px 14px 0;font-size:13px;font-style:italic;color:var(--m);min-height:0;background:var(--g)}
.cf{display:flex;align-items:flex-end;gap:8px;padding:10px;border-top:1px solid var(--l);background:var(--b)}
textarea,input{flex:1;resize:none;min-height:42px;max-height:140px;border:1px solid var(--o);border-radius:10px;padding:10px;line-height:1.4;background:var(--b);width:100%}
.cf button{flex:none;width:42px;height:42px;border-radius:10px;background:var(--c);color:var(--on);display:flex;align-items:center;justify-content:center}
.cf [type=button]{width:32px;background:none;color:var(--i)}
.hint{padding:0 14px 8px;font-size:12px;color:var(--m);background:var(--b)}
.cf button svg{width:20px;height:20px;fill:currentColor}
button:focus-visible,textarea:focus-visible,input:focus-visible,a:focus-visible{outline:3px solid var(--k);outline-offset:2px;box-shadow:0 0 0 5px var(--b)}
.offline,.csat{flex:none;max-height:70%;overflow-y:auto;display:flex;flex-direction:column;gap:8px;padding:12px 14px;border-top:1px solid var(--l);background:var(--b)}
.f label,.more label,.mail label{display:block;font-size:13px;font-weight:600;margin-bottom:2px}
.err{color:var(--r);font-size:13px}
.w .primary{align-self:flex-start;background:var(--c);color:var(--on);border-radius:10px;padding:9px 14px;font-weight:600}
.w .primary:disabled{opacity:.6;cursor:default}
.q{font-weight:600}
.opts{display:flex;flex-wrap:wrap;gap:6px}
.opt{border:1px solid var(--o);border-radius:18px;padding:6px 12px}
.opt[aria-pressed=true]{background:var(--c);color:var(--on);border-color:var(--c)}
.more,.mail{display:flex;flex-direction:column;gap:6px}
.mail p:empty{display:none}
.thanks{color:var(--s);font-size:14px}
.thanks:empty{display:none}
.msg .b a.img{display:block}
.msg .b img{display:block;max-width:220px;max-height:200px;border-radius:8px;background:#fff}
.sr{position:absolute!important;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);clip-path:inset(50%);white-space:nowrap}
@media (max-width:520px),(max-height:520px){.panel{inset:0;width:auto;height:auto;max-height:none;border-radius:0}.w.open .bubble{display:none}}
.w.fs .panel{inset:0;width:auto;height:auto;max-height:none;border-radius:0;zoom:var(--z)}.w.fs .bubble{zoom:var(--z)}.w.fs.open .bubble{display:none}
@media (prefers-reduced-motion:no-preference){.panel{transition:opacity .15s}}
.w.dark{${DARK}}
@media (prefers-color-scheme:dark){.w.auto{${DARK}}}
`;
