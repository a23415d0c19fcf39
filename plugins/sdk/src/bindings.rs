//! The generated bindings of the `tributary:connector` world: the only `generate!` on the guest
//! side. The crate root re-exports what plugins name (`tributary`, `exports`,
//! `export_connector!`); everything else in the SDK is written by hand and documented.

#![allow(missing_docs)] // generated code; the WIT docs are carried into it

wit_bindgen::generate!({
    world: "connector",
    path: "../../wit",
    pub_export_macro: true,
    export_macro_name: "export_connector",
    default_bindings_module: "tributary_sdk::bindings",
    generate_all,
});
