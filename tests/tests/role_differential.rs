//! The emulator enforces pull permissions with its own role table and matcher; pulldoctor judges
//! them with its own reading (azure-model's table). Generated role definitions hold the two to
//! each other: for every built-in role and every generated custom role, in legacy and ABAC
//! mode, both must agree on whether the holder may pull.

use azure_model::authorization::{Permission, RoleDefinitionProperties};
use azure_model::{Inventory, Resource};

mod rng;
use rng::Rng;

const ACTIONS: &[&str] = &[
    "*",
    "*/read",
    "Microsoft.ContainerRegistry/*",
    "Microsoft.ContainerRegistry/*/read",
    "Microsoft.ContainerRegistry/registries/*",
    "Microsoft.ContainerRegistry/registries/*/read",
    "Microsoft.ContainerRegistry/registries/pull/read",
    "Microsoft.ContainerRegistry/registries/push/write",
    "microsoft.containerregistry/registries/PULL/read",
    "Microsoft.*/registries/*",
    "Microsoft.Network/*",
];

const DATA_ACTIONS: &[&str] = &[
    "*",
    "Microsoft.ContainerRegistry/*",
    "Microsoft.ContainerRegistry/registries/repositories/*",
    "Microsoft.ContainerRegistry/registries/repositories/content/read",
    "Microsoft.ContainerRegistry/registries/repositories/content/*",
    "Microsoft.ContainerRegistry/registries/repositories/*/read",
    "Microsoft.ContainerRegistry/registries/repositories/content/write",
    "Microsoft.ContainerRegistry/registries/repositories/metadata/read",
];

fn engine_view(definition: Option<&RoleDefinitionProperties>, guid: &str) -> Option<(bool, bool)> {
    let mut inv = Inventory::default();
    if let Some(d) = definition {
        let body = serde_json::json!({
            "id": format!("/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/{guid}"),
            "name": guid,
            "type": "Microsoft.Authorization/roleDefinitions",
            "properties": d,
        });
        inv.role_definitions.push(serde_json::from_value::<Resource<RoleDefinitionProperties>>(body).unwrap());
    }
    pulldoctor::detect::role_pull(&inv, guid)
}

#[test]
fn built_in_roles_mean_the_same_to_the_emulator_and_the_engine() {
    let guids: Vec<&str> = pullproof_emulator::roles::all_built_in()
        .map(|r| r.id)
        .chain(azure_model::authorization::BUILT_IN_ROLES.iter().map(|r| r.id))
        .collect();
    for guid in guids {
        let emulator = (
            pullproof_emulator::roles::built_in_grants_pull(guid, false),
            pullproof_emulator::roles::built_in_grants_pull(guid, true),
        );
        let engine = engine_view(None, guid);
        assert_eq!(
            emulator.0.zip(emulator.1),
            engine,
            "built-in role {guid}: emulator (legacy, abac) {emulator:?}, engine {engine:?}"
        );
    }
}

#[test]
fn generated_custom_roles_mean_the_same_to_the_emulator_and_the_engine() {
    let mut compared = 0;
    for seed in 1..=2000u64 {
        let mut rng = Rng(0xD1B5_4A32_D192_ED03 ^ seed.wrapping_mul(0x9E37_79B9));
        let permissions = (0..1 + rng.next() % 2)
            .map(|_| Permission {
                actions: rng.some(ACTIONS, 3),
                not_actions: rng.some(ACTIONS, 1),
                data_actions: rng.some(DATA_ACTIONS, 3),
                not_data_actions: rng.some(DATA_ACTIONS, 1),
            })
            .collect();
        let definition =
            RoleDefinitionProperties { role_name: format!("custom-{seed}"), permissions, ..Default::default() };
        let guid = format!("00000000-0000-4000-8000-{seed:012}");
        let emulator = (
            pullproof_emulator::roles::definition_grants_pull(&definition, false),
            pullproof_emulator::roles::definition_grants_pull(&definition, true),
        );
        let engine = engine_view(Some(&definition), &guid);
        assert_eq!(
            Some(emulator),
            engine,
            "seed {seed}: emulator (legacy, abac) {emulator:?}, engine {engine:?}: {definition:#?}"
        );
        compared += 1;
    }
    assert_eq!(compared, 2000);
}
