// The web UI: its files, served by the admin server at / (pages in client/, run in the browser).
export { createUiSite, UI_PREFIX, type UiAsset, type UiSite } from './site.ts';
