use super::*;

#[test]
fn provider_files_are_found_by_name() {
    let dir = std::env::temp_dir().join(format!("vk-provider-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for file in [
        "libvk_b.so",
        "libvk_a.so",
        "libvk_.so",
        "libother.so",
        "libvk_c.so.1",
    ] {
        std::fs::write(dir.join(file), b"").unwrap();
    }
    assert_eq!(provider_files(&dir).unwrap(), ["a", "b"]);
    assert_eq!(library_path(&dir, "a"), dir.join("libvk_a.so"));
    let unknown = open(&dir, "zzz").unwrap_err().to_string();
    assert!(unknown.contains("providers found: a, b"), "{unknown}");
    let not_elf = open(&dir, "a").unwrap_err();
    assert!(
        matches!(not_elf, LoadError::NotAProvider { .. }),
        "{not_elf}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn hanging_calls_are_cut_off() {
    let limit = Duration::from_millis(50);
    let error = run_blocking("hang", limit, || {
        std::thread::sleep(Duration::from_millis(300));
        Ok(())
    })
    .await
    .unwrap_err();
    assert_eq!(error.kind, vk_abi::ErrorKind::Unavailable);
    assert_eq!(
        error.message,
        "provider call hang did not answer within 0.05s"
    );
}

const NAMES: (&str, &str) = ("first", "then");

fn failed(message: &str) -> Result<(), ProviderError> {
    Err(ProviderError::other(message))
}

#[tokio::test]
async fn two_calls_in_one_trip_give_both_results_and_the_second_runs_only_after_the_first() {
    let limit = Duration::from_secs(5);
    let both = run_two(NAMES, limit, Arc::new(7), |n| Ok(*n), |n| Ok(n * 2)).await;
    assert_eq!(both.unwrap(), (7, Ok(14)));
    let second_failed = run_two(
        NAMES,
        limit,
        Arc::new(()),
        |_| Ok(1),
        |_| failed("no status"),
    )
    .await;
    let (first, second) = second_failed.unwrap();
    assert_eq!(
        (first, second.unwrap_err().message.as_str()),
        (1, "no status")
    );
    let first_failed = run_two(
        NAMES,
        limit,
        Arc::new(()),
        |_| failed("no delete"),
        |_| -> Result<(), ProviderError> { panic!("the second call ran after the first failed") },
    )
    .await;
    assert_eq!(first_failed.unwrap_err().message, "no delete");
}

#[tokio::test]
async fn the_call_that_hangs_in_a_trip_of_two_is_named() {
    let limit = Duration::from_millis(50);
    let hang = |_: &()| {
        std::thread::sleep(Duration::from_millis(300));
        Ok(())
    };
    let first = run_two(NAMES, limit, Arc::new(()), hang, |_| Ok(())).await;
    assert_eq!(
        first.unwrap_err().message,
        "provider call first did not answer within 0.05s"
    );
    let then = run_two(NAMES, limit, Arc::new(()), |_| Ok(()), hang).await;
    assert_eq!(
        then.unwrap_err().message,
        "provider call then did not answer within 0.05s"
    );
}
